from relia.cli.main import main

main()
