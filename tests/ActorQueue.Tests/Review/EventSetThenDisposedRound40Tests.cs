using ActorQueue.Primitives;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Review round 40 of the event's shared wait when the event is set and then disposed (or its actor system stops)
/// before anyone made the shared task: a caller whose <c>WaitAsync</c> checked "not set" just before the set, and
/// joins only after the disposal, must still be answered.
/// </summary>
public sealed class EventSetThenDisposedRound40Tests
{
    /// <summary>
    /// The interleaving driven on the event's state as <c>AsyncEvent</c> runs it: a caller found the event unset (its
    /// <c>WaitAsync</c> passed the disposed and set checks), then <c>Set</c> ran with no shared task made yet, then the
    /// disposal abandoned the event, then the caller joined. The caller's task must complete (the event was set).
    /// Failed before: <c>Abandon</c> made the shared task and, seeing the event set, left it pending, and
    /// <c>Join</c> returned that existing task without looking at the flag: the caller waited for ever.
    /// </summary>
    [Fact]
    public void A_caller_joining_after_a_set_and_then_a_disposal_is_answered()
    {
        var state = new EventState();
        state.MarkSet();
        state.Abandon(new ObjectDisposedException(nameof(AsyncEvent)));

        var wait = state.Join();

        Assert.True(wait.IsCompletedSuccessfully, $"the shared wait is {wait.Status}");
    }
}
