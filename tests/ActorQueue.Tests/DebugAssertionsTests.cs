using System.Diagnostics;
using Akka.Actor;

namespace ActorQueue.Tests;

/// <summary>
/// A failed assert inside an actor is kept for the test's teardown and the actor carries on (<see cref="DebugAssertions"/>).
/// <c>Trace.Fail</c> stands for <c>Debug.Assert</c>, which a Release build of this assembly would compile away: both
/// reach the same listeners.
/// </summary>
public class DebugAssertionsTests : ActorQueueTestKit
{
    [Fact]
    public async Task A_failed_assert_inside_an_actor_is_kept_for_the_teardown_and_the_actor_keeps_its_message_and_state()
    {
        var asserting = Sys.ActorOf(Props.Create(() => new AssertingCounter()), "asserting");

        asserting.Tell("fail", TestActor);
        asserting.Tell("count", TestActor);

        Assert.Equal(1, await ExpectMsgAsync<int>());
        Assert.Equal(2, await ExpectMsgAsync<int>());
        var failure = Assert.Single(DebugAssertions.TakeFailures(Sys));
        Assert.Contains("akka://test/user/asserting", failure);
        Assert.Contains("the counter asserts", failure);
        Assert.Empty(DebugAssertions.TakeFailures(Sys));
    }

    [Fact]
    public void A_failed_assert_outside_any_actor_still_throws_as_the_test_host_makes_it()
    {
        Assert.ThrowsAny<Exception>(() => Trace.Fail("outside any actor"));
        Assert.Empty(DebugAssertions.TakeFailures(Sys));
    }

    /// <summary>Counts its messages; a restart (what a thrown assert would cause) would start it again from 0.</summary>
    private sealed class AssertingCounter : ReceiveActor
    {
        private int _count;

        public AssertingCounter()
        {
            Receive<string>(message =>
            {
                _count++;
                if (message == "fail")
                {
                    Trace.Fail("the counter asserts");
                }

                Sender.Tell(_count);
            });
        }
    }
}
