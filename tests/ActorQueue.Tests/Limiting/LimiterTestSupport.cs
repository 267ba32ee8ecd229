using System.Collections.Concurrent;
using System.Diagnostics;
using ActorQueue.Actors;
using Akka.TestKit;
using Status = ActorQueue.Actors.GatekeeperProtocol.Status;

namespace ActorQueue.Tests.Limiting;

/// <summary>What the limiter tests share: the gatekeeper's status, and a private tracer that records the spans it ends.</summary>
internal static class LimiterTestSupport
{
    /// <summary>
    /// How many ops wait in <paramref name="turn"/> for its owner (its pushed stack, newest first, down to the owned
    /// mark): a test that holds the turn waits for the count it sent, where <c>HasPushed</c> holds from the first.
    /// </summary>
    public static int PushedOps(TurnInbox turn)
    {
        const System.Reflection.BindingFlags Private = System.Reflection.BindingFlags.NonPublic;
        var owned = typeof(TurnInbox).GetField("Owned", Private | System.Reflection.BindingFlags.Static)!.GetValue(null);
        var op = (ITurnOp?)typeof(TurnInbox).GetField("_head", Private | System.Reflection.BindingFlags.Instance)!.GetValue(turn);
        var count = 0;
        for (; op is not null && !ReferenceEquals(op, owned); op = op.NextOp)
        {
            count++;
        }

        return count;
    }

    /// <summary>The gatekeeper's status; asked after earlier tells from this thread, so it has handled them.</summary>
    public static async Task<Status> StatusOf(this TestKitBase kit, ConcurrencyLimiter limiter)
    {
        var probe = kit.CreateTestProbe();
        limiter.Gatekeeper.Tell(GatekeeperProtocol.GetStatus.Instance, probe.Ref);
        return await probe.ExpectMsgAsync<Status>();
    }

    /// <summary>How many callers wait in the gatekeeper's lean FIFO, asked without moving them into its gate (<see cref="CountLeanWaiters"/>).</summary>
    public static async Task<int> LeanWaitersOf(this TestKitBase kit, ConcurrencyLimiter limiter)
    {
        var probe = kit.CreateTestProbe();
        limiter.Gatekeeper.Tell(CountLeanWaiters.Instance, probe.Ref);
        return await probe.ExpectMsgAsync<int>();
    }

    /// <summary>Acquires one request for <paramref name="probe"/> through the protocol and expects it granted at once.</summary>
    public static async Task<GatekeeperProtocol.Granted> AcquireGranted(this ConcurrencyLimiter limiter, TestProbe probe, long requestId, int permits = 1)
    {
        limiter.Gatekeeper.Tell(new GatekeeperProtocol.Acquire("probe", requestId) { Permits = permits }, probe.Ref);
        return await probe.ExpectMsgAsync<GatekeeperProtocol.Granted>(g => Assert.Equal(requestId, g.RequestId));
    }
}

/// <summary>A tracer of its own per test (parallel tests do not see each other's spans), recording every span it ends.</summary>
internal sealed class SpanRecorder : IDisposable
{
    private readonly ActivityListener _listener;

    public SpanRecorder()
    {
        _listener = new ActivityListener
        {
            ShouldListenTo = source => ReferenceEquals(source, Tracer),
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = Stopped.Enqueue,
        };
        ActivitySource.AddActivityListener(_listener);
    }

    public ActivitySource Tracer { get; } = new($"test-tracer-{Guid.NewGuid():N}");

    public ConcurrentQueue<Activity> Stopped { get; } = new();

    public void Dispose()
    {
        _listener.Dispose();
        Tracer.Dispose();
    }
}
