"""The pages a visitor lands on answer."""

from .factories import make_idea


def test_home_lists_most_active_idea(client):
    """The home page shows the boards and a recently active idea."""
    idea = make_idea(title="Dark mode for the app")
    resp = client.get("/")
    assert resp.status_code == 200
    assert b"Dark mode for the app" in resp.data
    assert b"General" in resp.data
    assert idea.id
