using System.Collections.Concurrent;
using ActorQueue.Coordination;
using ActorQueue.Primitives;

namespace ActorQueue.Tests.Primitives;

/// <summary>Threads racing on a primitive's shared state: started together, joined with a bound.</summary>
internal static class Racers
{
    public static void Run(Thread[] threads)
    {
        foreach (var thread in threads)
        {
            thread.Start();
        }

        foreach (var thread in threads)
        {
            Assert.True(thread.Join(TimeSpan.FromMinutes(2)), "a racing thread never finished");
        }
    }
}

/// <summary>A coordinator's message loop on one thread, as its actor runs it: one message at a time, in order.</summary>
internal sealed class CoordinatorThread
{
    private readonly BlockingCollection<object> _mailbox = [];
    private readonly Action<object> _handle;
    private readonly Thread _thread;

    public CoordinatorThread(Action<object> handle)
    {
        _handle = handle;
        _thread = new Thread(Loop) { IsBackground = true };
        _thread.Start();
    }

    public void Post(object message) => _mailbox.Add(message);

    public void Stop()
    {
        _mailbox.CompleteAdding();
        Assert.True(_thread.Join(TimeSpan.FromMinutes(1)), "the coordinator never drained its mailbox");
    }

    private void Loop()
    {
        foreach (var message in _mailbox.GetConsumingEnumerable())
        {
            _handle(message);
        }
    }
}

/// <summary>A racing caller's withdrawal, posted once its cancellation won.</summary>
internal sealed record Withdraw(PermitWaiter Waiter);

/// <summary>A racing caller's waiter: grant and cancellation race, the first wins, as in the facade's waiter.</summary>
internal sealed class RacingWaiter(object? owner = null) : PermitWaiter
{
    private int _completed;

    public ManualResetEventSlim Granted { get; } = new();

    public override object? Owner => owner;

    public override bool IsWithdrawn => Volatile.Read(ref _completed) != 0;

    public override bool TryGrant(in PermitGrant grant)
    {
        if (Interlocked.Exchange(ref _completed, 1) != 0)
        {
            return false;
        }

        Granted.Set();
        return true;
    }

    public bool TryCancel() => Interlocked.Exchange(ref _completed, 1) == 0;

    public override void Fail(Exception error) => throw new InvalidOperationException("nothing fails a waiter here", error);
}

/// <summary>
/// Racing flows that hold a lock driven through a <see cref="LockCoordinatorStandIn"/> on a <see cref="CoordinatorThread"/>:
/// each hold counts who is inside, then releases its only level as <c>AsyncLock</c> does; <see cref="Run"/> checks that
/// nothing failed and nobody held together.
/// </summary>
internal sealed class RacingHolders(LockCoordinatorStandIn coordinator, CoordinatorThread thread)
{
    private int _inside;
    private int _mostInside;

    public CoordinatorThread Thread { get; } = thread;

    /// <summary>What went wrong on the flows' side.</summary>
    public ConcurrentQueue<string> Failures { get; } = new();

    /// <summary>Runs <paramref name="whileHeld"/> as a holder, then releases; <c>false</c> when the flow must stop.</summary>
    public bool HoldThenRelease(object flow, Action whileHeld)
    {
        Poll.InterlockedMax(ref _mostInside, Interlocked.Increment(ref _inside));
        whileHeld();
        Interlocked.Decrement(ref _inside);
        return coordinator.ReleaseLast(flow, Thread, Failures);
    }

    /// <summary>Runs the racing flows to the end, stops the coordinator's thread and checks both sides.</summary>
    public void Run(Thread[] flows)
    {
        Racers.Run(flows);
        Thread.Stop();
        Assert.Empty(Failures);
        Assert.Empty(coordinator.Failures);
        Assert.Equal(1, _mostInside);
    }
}

/// <summary>
/// The lock's coordinator as <c>LockCoordinator</c> runs it, without an actor: every message takes the published head
/// back and sweeps first and publishes the head again last; a release it is told of frees the lock and hands it on.
/// Call it from one thread at a time (the test's, or a <see cref="CoordinatorThread"/>).
/// </summary>
internal sealed class LockCoordinatorStandIn
{
    public LockCoordinatorStandIn(LockState state)
    {
        State = state;
        Gate = new PermitGate(new LockBooks(this), [state]);
    }

    /// <summary>How many waiters the gate granted (the others the releasers handed the lock to).</summary>
    public int GateGrants { get; private set; }

    public LockState State { get; }

    public PermitGate Gate { get; }

    /// <summary>The flow waiters in the order the gate queued them (the FIFO every grant must follow).</summary>
    public List<PermitWaiter> QueuedOrder { get; } = [];

    /// <summary>A waiter arrives: a flow's (announced and counted as sending by its flow before it was sent) or an actor's (announced here).</summary>
    public void Deliver(PermitWaiter waiter) => InMessage(() =>
    {
        if (waiter is LockWaiter)
        {
            State.Arrived();
        }

        if (waiter.IsWithdrawn)
        {
            State.Leave();
            return;
        }

        State.Offer(Gate, waiter);
        if (waiter.IsQueued)
        {
            QueuedOrder.Add(waiter);
        }
    });

    /// <summary>A cancelled waiter's withdrawal arrives.</summary>
    public void Withdraw(PermitWaiter waiter) => InMessage(() =>
    {
        if (Gate.Withdraw(waiter))
        {
            State.Leave();
            State.OtherLeft(waiter);
        }
    });

    /// <summary>What went wrong on the coordinator's side (checked by the test, as a failed assert would end a coordinator thread).</summary>
    public ConcurrentQueue<string> Failures { get; } = new();

    /// <summary>
    /// A racing flow's release of its only level, as <c>AsyncLock</c> does it: claim the release, hand the lock to the
    /// next flow of the published line or the published head, else tell the coordinator (posted on <paramref name="thread"/>). <c>false</c>, with the failure
    /// in <paramref name="failures"/>, when the flow did not hold the lock at depth 1.
    /// </summary>
    public bool ReleaseLast(object flow, CoordinatorThread thread, ConcurrentQueue<string> failures)
    {
        if (!State.TryClaimRelease(flow, out var remaining) || remaining != 0)
        {
            failures.Enqueue("a granted flow did not hold the lock at depth 1");
            return false;
        }

        if (!State.TryPassOn(flow))
        {
            thread.Post(() => Released(flow));
        }

        return true;
    }

    /// <summary>A release that found someone waiting and nothing published arrives: free the lock and hand it on.</summary>
    public void Released(object owner) => InMessage(() =>
    {
        if (!ReferenceEquals(owner, State.Owner) || State.Depth != 0)
        {
            Failures.Enqueue("a release reached the coordinator for a flow that does not hold the lock at depth 0");
            return;
        }

        State.Clear();
        Gate.Release(PermitDemand.One);
    });

    /// <summary>Any other message: the coordinator takes the head back, sweeps and publishes again.</summary>
    public void Nothing() => InMessage(() => { });

    private void InMessage(Action handle)
    {
        State.BeginMessage(Gate);
        handle();
        State.EndMessage(Gate);
    }

    /// <summary>The coordinator's books on the word: the grantee becomes the holder; a waiter granted from the queue leaves.</summary>
    private sealed class LockBooks(LockCoordinatorStandIn coordinator) : IPermitGateListener
    {
        private readonly LockState _state = coordinator.State;

        public void Publish(in PermitSnapshot now) => _state.Waiting = now.Waiting;

        public void Queued(PermitWaiter waiter)
        {
        }

        public void Granting(PermitWaiter waiter, in PermitGrant grant)
        {
            _state.Grant(waiter.Owner ?? waiter, 1);
            coordinator.GateGrants++;
            if (grant.Waited)
            {
                _state.Leave();
                _state.OtherLeft(waiter);
            }
        }

        public void GrantLost(PermitWaiter waiter, in PermitGrant grant)
        {
            // The lock's refund cleared the holder before it freed the word, as LockCoordinator relies on.
        }

        public void Granted(PermitWaiter waiter, in PermitGrant grant)
        {
        }

        public Exception Rejecting(PermitWaiter waiter, in PermitRejection rejection) => new InvalidOperationException();
    }
}
