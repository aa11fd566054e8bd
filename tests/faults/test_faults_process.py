"""The server process is killed (SIGKILL) and restarted while clients poll."""

from faults_support import Follower, RawPoll, health, stop_followers, stored
from waiting import wait_for

from imbus import sender


def delivered(followers, expected):
    return all(follower.messages() == expected for follower in followers)


def test_clients_resume_from_their_last_after_a_sigkill_without_loss_or_repeats(server, database, dsn):
    srv = server()
    followers = [Follower(srv.url, "feed") for _ in range(3)]
    wait_for(lambda: health(srv.url)["waiters"] == 3)
    before = [f"before-{n}" for n in range(5)]
    for message in before:
        srv.send("feed", message)
    wait_for(lambda: delivered(followers, before), within=10)

    srv.kill()  # no goodbye: waiting polls see their connection reset
    down = [f"down-{n}" for n in range(5)]  # another process keeps sending meanwhile
    sender.sendmany(database, database.dbname, [("feed", message) for message in down])
    srv.start()  # same port, fresh process, empty memory
    wait_for(lambda: delivered(followers, before + down), within=5,
             message="what was sent while the server was down did not reach the clients")
    after = [f"after-{n}" for n in range(5)]
    for message in after:
        srv.send("feed", message)
    wait_for(lambda: delivered(followers, before + down + after), within=10)
    stop_followers(followers, srv.send)

    for follower in followers:
        assert follower.failures >= 1, "the kill went unnoticed: the test proves nothing"
        assert len(set(follower.ids())) == len(follower.ids()) == 15
    table = stored(dsn, "feed")
    assert [item["message"] for item in srv.poll(["feed"], table[0][0] - 1)] == before + down + after


def test_a_client_back_after_a_restart_gets_what_the_table_still_holds(server, database, dsn):
    srv = server()
    srv.send("history", "one")
    first = srv.poll(["history"], 0)
    srv.send("history", "two")
    srv.kill()
    sender.sendone(database, database.dbname, "history", "three")
    srv.start()
    assert [item["message"] for item in srv.poll(["history"], first[-1]["id"])] == ["two", "three"]
    assert [item["message"] for item in srv.poll(["history"], 0)] == ["one", "two", "three"]


def test_clients_reconnecting_all_at_once_to_a_fresh_process_get_what_they_missed(server, database, dsn):
    """After a restart every client comes back at the same moment, with its `last`: the
    first of them loads the server's memory while the others read it half-built."""
    srv = server()
    srv.send("rush", "seen")
    last = srv.poll(["rush"], 0)[-1]["id"]
    srv.kill()
    sender.sendone(database, database.dbname, "rush", "missed")
    srv.start()
    polls = [RawPoll(srv.url, ["rush"], last) for _ in range(30)]
    for poll in polls:
        assert [item["message"] for item in poll.answer(timeout=5)["result"]] == ["missed"]
