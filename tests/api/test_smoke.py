def test_healthz(client):
    assert client.get("/healthz").json() == {"status": "ok"}


def test_services_listed_for_a_reader(client, org):
    response = client.get("/api/v1/services", headers=org.headers("alice:read"))
    assert response.status_code == 200, response.text
    assert [item["slug"] for item in response.json()["items"]] == ["checkout", "ranker"]
