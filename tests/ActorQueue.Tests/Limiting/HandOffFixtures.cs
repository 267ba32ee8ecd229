using System.Collections.Concurrent;
using ActorQueue.Actors;
using ActorQueue.Coordination;
using ActorQueue.Tests.Primitives;
using Akka.Actor;

namespace ActorQueue.Tests.Limiting;

/// <summary>A facade request whose grants are counted, as the gatekeeper's waiter is (a real <see cref="AcquireRequest"/>).</summary>
internal sealed class CountedRequest(string source, int permits = 1, int priority = 0)
    : AcquireRequest(source, ActorRefs.Nobody, signalQueued: false, permits, priority, timeout: null)
{
    private int _grants;

    /// <summary>How many grants it won (at most one, or a head was handed off twice).</summary>
    public int Grants => Volatile.Read(ref _grants);

    public override bool TryGrant(in PermitGrant grant)
    {
        if (!base.TryGrant(grant))
        {
            return false;
        }

        Interlocked.Increment(ref _grants);
        return true;
    }
}

/// <summary>
/// A limiter's gatekeeper as <c>GatekeeperActor</c> runs its gate without rates, without an actor and without lending:
/// every message closes the hand-off first (taken heads leave the gate) and publishes the gate's front last, while
/// callers wait and the pool is within its limit. Releases go through <see cref="PermitHandOff.PassOn"/> and the rest by
/// message. Call its messages from one thread at a time (the test's, or a <see cref="CoordinatorThread"/>).
/// </summary>
internal sealed class HandOffGatekeeperStandIn : IPermitGateListener, ILeaseReleaser
{
    private readonly GatekeeperTelemetry _telemetry = new("hand-off-test");

    public HandOffGatekeeperStandIn(int maxRunning)
    {
        Pool = new PermitPool(maxRunning);
        Gate = new PermitGate(this, [Pool]);
        Counts.PublishLimits(maxRunning, null);
    }

    public LimiterCounts Counts { get; } = new();

    public PermitHandOff HandOff => Counts.HandOff;

    public PermitPool Pool { get; }

    public PermitGate Gate { get; }

    /// <summary>Where releases that found no head to take go; <see cref="Mailbox"/> when <c>null</c>.</summary>
    public CoordinatorThread? Thread { get; set; }

    /// <summary>Messages waiting for the test to hand them to the stand-in (<see cref="DeliverMail"/>), in order.</summary>
    public Queue<Action> Mailbox { get; } = new();

    /// <summary>Handles every message in <see cref="Mailbox"/>, in order.</summary>
    public void DeliverMail()
    {
        while (Mailbox.TryDequeue(out var message))
        {
            message();
        }
    }

    /// <summary>Facade waiters in the order the gate queued them, per priority (the FIFO every grant must follow).</summary>
    public ConcurrentDictionary<int, List<PermitWaiter>> QueuedOrder { get; } = new();

    /// <summary>What went wrong on the gatekeeper's side (checked by the test, as a failed assert would end its thread).</summary>
    public ConcurrentQueue<string> Failures { get; } = new();

    /// <summary>Messages handled with the publication left open (a newcomer queued behind the published heads).</summary>
    public int LeftOpen { get; private set; }

    /// <summary>Heads a releaser took, as the gatekeeper found them at the start of its messages.</summary>
    public int HandedOff { get; private set; }

    /// <summary>Grants the gate made in its messages.</summary>
    public int GateGrants { get; private set; }

    /// <summary>A facade request arrives (announced by its caller as the facade does).</summary>
    public void Deliver(AcquireRequest request) => InMessage(request.Priority <= 0 && Pool.InUse >= Pool.Limit, () =>
    {
        request.Releaser = this;
        if (request.Announced && request.Priority > 0)
        {
            HandOff.LeavePrioritised();
        }

        Gate.Offer(request);
        if (request.IsQueued)
        {
            QueuedOrder.GetOrAdd(request.Priority, _ => []).Add(request);
        }
    });

    /// <summary>Any other waiter arrives (an actor's, say): it queues in the same gate.</summary>
    public void DeliverOther(PermitWaiter waiter) => InMessage(() => Gate.Offer(waiter));

    /// <summary>A cancelled caller's withdrawal arrives.</summary>
    public void Withdraw(PermitWaiter waiter) => InMessage(() => Gate.Withdraw(waiter));

    /// <summary>Permits a release could not hand on arrive.</summary>
    public void Released(int permits) => InMessage(() => Gate.Release(new PermitDemand(permits)));

    /// <summary>A resize arrives (the facade published the limit and suspended the hand-off before it sent it).</summary>
    public void Resize(int maxRunning) => InMessage(() => Gate.Resize(Pool, maxRunning));

    /// <summary>Any other message: the hand-off is closed, accounted for and published again.</summary>
    public void Nothing() => InMessage(() => { });

    /// <summary>The gatekeeper stops: closed for good, taken heads accounted for, every waiter failed.</summary>
    public void Stop()
    {
        HandOff.Close();
        HandOff.BeginMessage(Gate, _telemetry);
        Gate.RejectAll(PermitRejectionKind.Disposed);
    }

    /// <inheritdoc />
    public void Release(ConcurrencyLease lease)
    {
        var left = HandOff.PassOn(lease.Permits, Counts.Loan, _telemetry);
        if (left == 0)
        {
            return;
        }

        if (Thread is { } thread)
        {
            thread.Post(() => Released(left));
        }
        else
        {
            Mailbox.Enqueue(() => Released(left));
        }
    }

    public void Publish(in PermitSnapshot now) => Counts.Publish((int)now.InUse, now.Waiting);

    public void Queued(PermitWaiter waiter)
    {
    }

    public void Granting(PermitWaiter waiter, in PermitGrant grant)
    {
    }

    public void GrantLost(PermitWaiter waiter, in PermitGrant grant)
    {
    }

    public void Granted(PermitWaiter waiter, in PermitGrant grant) => GateGrants++;

    public Exception Rejecting(PermitWaiter waiter, in PermitRejection rejection) => new InvalidOperationException($"{waiter.Source}: {rejection.Kind}");

    private void InMessage(Action handle) => InMessage(light: false, handle);

    private void InMessage(bool light, Action handle)
    {
        // The test's own check of what the gatekeeper may only assert: the heads taken were the gate's front, in order.
        var front = new PermitWaiter?[PermitHandOff.MaxHeads];
        var copied = Gate.CopyFront(front);
        var waitingBefore = Gate.Waiting;
        var taken = light ? HandOff.Sync(Gate, _telemetry) : HandOff.BeginMessage(Gate, _telemetry);
        HandedOff += taken;
        LeftOpen += light ? 1 : 0;
        for (var i = 0; i < taken; i++)
        {
            // Not necessarily answered yet: its taker may still be on its way to the grant.
            if (i >= copied || front[i] is not AcquireRequest || front[i]!.IsQueued)
            {
                Failures.Enqueue($"taken head {i} was not the gate's front in order, or stayed linked");
            }
        }

        if (Gate.Waiting > waitingBefore - taken)
        {
            Failures.Enqueue("taken heads stayed in the gate");
        }

        handle();
        if (HandOff.IsServing)
        {
            return;
        }

        if (HandOff.MovedSinceBegun)
        {
            HandedOff += HandOff.BeginMessage(Gate, _telemetry);
        }

        if (Gate.Waiting != 0 && Gate.IsOpen && Pool.InUse <= Math.Min(Pool.Limit, Counts.MaxRunning))
        {
            HandOff.Publish(Gate, Pool.Limit - Pool.InUse);
        }
    }
}
