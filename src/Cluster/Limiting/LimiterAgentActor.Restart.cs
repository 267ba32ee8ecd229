using ActorQueue.Actors;
using ActorQueue.Coordination;
using Akka.Actor;
using Akka.Event;

namespace ActorQueue.Cluster;

// A cluster limiter's agent across a restart (it failed outside its handlers; its supervisor restarts it, a plain
// limiter's and a partition's alike) and at its stop. The failed instance fails its waiters
// but hands the leases its callers hold, and the node's block, to the next instance (AgentCarry), which announces them to
// the gatekeeper: the gatekeeper goes on counting them until they are released, as a restarted local gatekeeper carries
// its held leases. Before, the next instance announced empty books and the gatekeeper freed every permit the node's
// callers still held: the cluster-wide limit was exceeded by that many until they were released, and their releases went
// nowhere (Review/ClusterAgentLeasesReviewTests).
internal partial class LimiterAgentActor
{
    /// <inheritdoc />
    /// <remarks>
    /// An agent is restarted by its supervisor when it failed outside its handlers: its stop fails its waiters, told why,
    /// but only shuts the loan the facade (or the partitions' parent) shares with the next instance, and hands the next
    /// instance its held leases and block (<see cref="AgentCarry"/>), which numbers its requests on past this one's.
    /// </remarks>
    protected override void PreRestart(Exception reason, object message)
    {
        _restarting = true;
        _carry.LastId = _lastId;
        _carry.Routed = _routed; // the parent's count of messages routed here goes on (its idle check compares them)
        base.PreRestart(reason, message);
    }

    /// <inheritdoc />
    /// <remarks>
    /// The next instance of a restarted agent starts with the failed one's held leases and block (<see cref="TakeOver"/>),
    /// while the gatekeeper still counts those and the failed one's waits, and takes this agent (the same actor) as
    /// announced: a hello with epoch 0 changes nothing there, and requests went out as a first contact it never answered
    /// (the limiter hung for good, attempts were refused for good: <c>Review/RecentFixesReviewTests</c>). So it says hello
    /// with an epoch no incarnation has (they are random, never 0), which an announced agent says only once it has left
    /// the incarnation: asked again, it announces the leases and block it carries and no wait, and the gatekeeper frees
    /// only what it no longer announces (a re-announcement replaces what the agent said before): the failed instance's
    /// waits, and leases released meanwhile (their releases, sent while it followed no incarnation, are dropped there).
    /// A wish the failed instance was answering is ended, so attempts wish again.
    /// </remarks>
    protected override void PostRestart(Exception reason)
    {
        base.PostRestart(reason); // PreStart: the hello timer
        _wish.Handled(TimeSpan.Zero);
        if (_carry.TakeDispose() is { } dispose)
        {
            _disposeRequest = dispose; // two instances failed on it (AnswerUnhandled): stopped now, as its handler does
            Context.Stop(Self);
            return;
        }

        if (_block > 0)
        {
            Timers.StartPeriodicTimer(BlockLingerTick.Instance, BlockLingerTick.Instance, _blocks.Linger);
        }

        _gatekeeper.Send(new AgentHello(Random.Shared.NextInt64(1, long.MaxValue)), Self);
    }

    /// <inheritdoc />
    protected override void PostStop()
    {
        Exception stopped = _failedWith is { } failure
            ? new InvalidOperationException(
                $"The node agent of cluster limiter '{_displayName}' failed ({failure.GetType().Name}: {UserText.MessageOf(failure)}) and stopped; its waiters are failed, the limiter goes on", failure)
            : new ObjectDisposedException(nameof(ClusterConcurrencyLimiter), "The cluster concurrency limiter has been disposed.");
        foreach (var request in _pending.Values)
        {
            // Stopped neither failed nor by the facade's disposal (a partition's agent by a routed message, an agent its
            // supervisor could not make again): a facade's request is told so, not that the limiter was disposed; stopped
            // by its actor system's shutdown, that the limiter is gone (ClusterAcquireRequest.AgentStopped).
            request.Fail(_failedWith is null && request is ClusterAcquireRequest acquire ? acquire.AgentStopped(taken: true) : stopped);
        }

        _pending.Clear();
        if (_restarting)
        {
            // Restarted: the next instance lends through this same loan, so it is only shut, with its held count (the
            // claimed leases in it), and takes the held leases and the block, whose claims are then its own.
            _localCounts.Loan.Reclaim(out var held);
            _localCounts.NoteHeld(held);
            if (_applyAtStop is { } kept)
            {
                held = ApplyAtStop(kept.Message, kept.Sender, held);
            }

            _carry.Keep(KeptBooks());
            _localCounts.Publish(held, 0);
        }
        else
        {
            _localCounts.Loan.Close(); // claimed leases released from now on go nowhere: the gatekeeper frees the block with this agent
            _localCounts.Publish(0, 0);
            WarnOfUnappliedResizes();
            FailUnappliedResizeAnswers(_failedWith);
        }

        _disposeRequest?.Stopped.TrySetResult();
        base.PostStop();
    }

    /// <inheritdoc />
    /// <remarks>
    /// Holds only the message a failed instance hands its next one (<see cref="RedeliverUnhandled"/>). Explicit: a test
    /// subclass that holds messages back re-implements it, and the agent then uses that one (set by Akka through the interface).
    /// </remarks>
    IStash IActorStash.Stash { get; set; } = null!;

    /// <summary>A release, settle or actor's cancel two instances failed on, with its sender, for this instance's stop to apply (<see cref="ApplyAtStop"/>).</summary>
    private (object Message, IActorRef Sender)? _applyAtStop;

    /// <summary>
    /// The agent fails outside its handlers on <paramref name="message"/>: if it failed before the handler could run (its
    /// loan's reclaim threw), the message is handed to the next instance ahead of what its mailbox holds (stashed: Akka
    /// puts the stash back at the mailbox's front as the instance is replaced), since Akka's restart drops it. (Sent to
    /// this same actor, behind the mailbox, it was overtaken: an actor's ask and its cancel queued behind it, the cancel
    /// found nothing and the ask was then granted, the permit held for good: Review/AgentCarryRound2ReviewTests.)
    /// Dropped, a lease's release left the lease, carried, counted for ever, and a facade request was never answered.
    /// Once per message: one that fails again before its handler is answered here (<see cref="AnswerUnhandled"/>), not
    /// handed on again; once it reached its handler or was answered so, the same object failed on later (a shared status ask, <see cref="GetLimiterStatus.Instance"/>) is handed on again. (Dropped with a log line before, a facade caller awaited it for ever: Review/AgentFailsTwiceReviewTests.)
    /// A <see cref="Terminated"/> is not handed on (Akka takes one it did not queue for nothing): the next instance
    /// watches its actor callers again, and a caller that stopped is reported again. A message the parent counted is
    /// counted again when the next instance takes it, so it is counted off here (not when it is answered here: taken).
    /// </summary>
    private void RedeliverUnhandled(object message, Exception error)
    {
        if (_handling || message is Terminated)
        {
            return;
        }

        if (ReferenceEquals(message, _carry.Redelivered))
        {
            AnswerUnhandled(message, error);
            return;
        }

        _carry.Redelivered = message;
        if (message is ClusterAcquireRequest or WithdrawWaiter or GetLimiterStatus or AgentStatusAsk)
        {
            _routed--;
        }

        ((IActorStash)this).Stash.Prepend([new Envelope(message, Sender)]);
    }

    /// <summary>
    /// A message two instances failed on before its handler (<see cref="RedeliverUnhandled"/>) is not handed on again (a
    /// defect that fails every instance would hand it on for ever), nor dropped: what it asks is done or answered here, in
    /// the failing instance, before its stop carries its books. Its caller is failed with an
    /// <see cref="InvalidOperationException"/> naming the limiter and the cause, as after a handler's failure: a facade
    /// request (its announcement in the loan ended, as its handler would have: the loan lends again), an actor's acquire
    /// (alone or after its release; told <c>Rejected</c> at once: it was never booked, and the id it reuses may name the
    /// lease its release frees, whose books would take it for granted: it was never answered), a status ask
    /// (<see cref="Status.Failure"/>). An actor's status ask needs no books: it is answered as its handler does. A resize
    /// (the facade's or an actor's, checked as its handler does) is handled as its handler does: numbered, kept, and sent
    /// at once, through the hub (this instance follows no incarnation; the gatekeeper takes a resize from any agent, each
    /// number once), and the next instance sends it again after its announcement, in order. (Only kept for that before, it
    /// was lost when the next instance stopped first, on a dispose behind it or carried: Review/AgentLeftoversReviewTests.)
    /// A dispose is carried: the next instance stops at once (<see cref="AgentCarry.Dispose"/>;
    /// dropped, the limiter's <c>DisposeAsync</c> never completed). A release (of a facade's, an actor's or a claimed lease, or a
    /// release-and-acquire's) and a settle (a facade's or an actor's, which is answered) are applied to the books by the stop,
    /// once it has reclaimed the loan (<see cref="ApplyAtStop"/>), in their place, before what the mailbox holds: the next instance
    /// announces the books without the lease, so the gatekeeper frees its permits, and sends the settle again after its
    /// announcement, whole (<see cref="ReaddressSettlesSentToNone"/>). (Sent once more behind the mailbox before, a release that failed so again was given up, its lease
    /// counted until the node left; a settle and an actor's status ask or resize were dropped: Review/AgentResendReviewTests.)
    /// An actor's cancel is applied by the stop too: one of a granted request releases its lease (dropped before, the lease,
    /// carried, stayed counted while the actor lived: Review/ApplyAtStopReviewTests); one of a wait finds nothing.
    /// A withdrawal and a gatekeeper's reply need nothing: the failed instance's stop failed the waits
    /// they are about, and the next instance's announcement leaves those out. Nor does a <see cref="BlockRecall"/>: the
    /// next instance's re-announcement makes the gatekeeper take the whole block back and, while someone still waits,
    /// recall it again (Review/AgentLeftoversReviewTests). Each is logged with the count so far
    /// (<see cref="AgentCarry.Unhandled"/>). Nothing here publishes a count or sends to the gatekeeper but a resize: this
    /// instance has not reclaimed its loan, and follows no incarnation.
    /// </summary>
    private void AnswerUnhandled(object message, Exception error)
    {
        _carry.Redelivered = null; // answered: the same object failed on later (the shared GetLimiterStatus) is handed on again
        var failure = Failure("failed twice before handling this request", error);
        var outcome = "what it was about needs no answer";
        switch (message)
        {
            case ClusterAcquireRequest request:
                outcome = "its caller is failed";
                if (request.Announced)
                {
                    Loan.Leave();
                }

                AnswerFailed(0, request, failure);
                break;
            case GatekeeperProtocol.Acquire acquire:
                outcome = "its caller is told it was rejected";
                TellFailed(acquire, failure);
                break;
            case GatekeeperProtocol.ReleaseAndAcquire both:
                outcome = "its acquire is rejected and its release applied as the agent stops";
                TellFailed(both.Next, failure);
                _applyAtStop = (new GatekeeperProtocol.Release(both.LeaseId), Sender);
                break;
            case ReleaseAgentLease or ReleaseClaimedLease or GatekeeperProtocol.Release or SettleTokens or GatekeeperProtocol.Settle
                or GatekeeperProtocol.CancelAcquire: // a granted request's cancel releases its lease (its waits the stops failed)
                outcome = "it is applied to the books as the agent stops";
                _applyAtStop = (message, Sender);
                break;
            case GetLimiterStatus or AgentStatusAsk:
                outcome = "its asker is failed";
                Sender.Tell(new Status.Failure(failure));
                break;
            case GatekeeperProtocol.GetStatus:
                outcome = "it is answered";
                TellStatus();
                break;
            case ResizeLimiter or GatekeeperProtocol.Resize:
                outcome = "it is booked and sent now, and again with the next instance's announcement";
                if ((message as ResizeLimiter ?? ValidResize((GatekeeperProtocol.Resize)message)) is { } resize)
                {
                    Resize(resize);
                }

                break;
            case AwaitedResize awaited:
                outcome = "it is booked and sent now, and again with the next instance's announcement";
                HandleAwaitedResize(awaited);
                break;
            case DisposeGatekeeper dispose:
                outcome = "the next instance stops at once";
                _carry.Dispose = dispose;
                break;
        }

        _log.Error(error, "Cluster limiter {0}: its node agent failed twice before handling {1} ({2} such message(s) so far); {3}",
            _displayName, message.GetType().Name, ++_carry.Unhandled, outcome);
    }

    /// <summary>An actor's acquire that was never booked is rejected with <paramref name="failure"/>.</summary>
    private void TellFailed(GatekeeperProtocol.Acquire acquire, Exception failure)
    {
        if (!Sender.IsNobody())
        {
            Sender.Tell(GatekeeperReplies.Instance.Failed(acquire.RequestId, failure));
        }
    }

    /// <summary>
    /// A release, settle or actor's cancel two instances failed on (<see cref="AnswerUnhandled"/>), applied by the failing instance's stop
    /// once it has reclaimed the loan: its books are then exact, as at the start of a message (the leases claimed from the
    /// loan are <paramref name="held"/> less the held leases), so the handler runs as it would have. What it sends to the
    /// gatekeeper is dropped there (this instance follows no incarnation); the next instance's announcement tells it.
    /// </summary>
    /// <remarks>
    /// A handler that throws here is logged and costs that message only, as in <see cref="ReceiveKeepingBooks"/>: the stop
    /// goes on and carries the books as they are, with the held count they say (an exception escaping the stop would skip
    /// the carry, and the gatekeeper would free every lease the node's callers hold).
    /// </remarks>
    /// <returns>The node's held count after it: the loan's, which the stop publishes for the next instance.</returns>
    private int ApplyAtStop(object message, IActorRef sender, int held)
    {
        _claimed = Math.Max(0, held - _heldPermits);
        try
        {
            switch (message)
            {
                case ReleaseAgentLease release:
                    ReleaseHeld(release.RequestId);
                    break;
                case ReleaseClaimedLease claimed:
                    HandleClaimedRelease(claimed);
                    break;
                case GatekeeperProtocol.Release release:
                    ReleaseActorLease(release, sender);
                    break;
                case SettleTokens settle:
                    HandleFacadeSettle(settle);
                    break;
                case GatekeeperProtocol.Settle settle:
                    SettleActorLease(settle, sender);
                    break;
                case GatekeeperProtocol.CancelAcquire cancel:
                    CancelActorRequest(cancel, sender);
                    break;
            }
        }
        catch (Exception error)
        {
            _log.Error(error, "Cluster limiter {0}: its node agent failed applying {1} as it stopped; it carries its {2} lease(s) and goes on",
                _displayName, message.GetType().Name, _held.Count);
        }

        return _heldPermits + _claimed;
    }

    /// <summary>The failed instance's books its callers depend on: the held leases (its actors' among them), the block and the resizes.</summary>
    private AgentBooks KeptBooks() => new(
        new Dictionary<long, PermitWaiter>(_held),
        _idByActorRequest.Where(entry => _held.ContainsKey(entry.Value)).ToDictionary(),
        [.. _fromBlock], _block, _keepBlock, _claimsSeen,
        [.. _settled.Where(_held.ContainsKey)], new Dictionary<long, RemoteSettle>(_unconfirmed), _lastSettle,
        _limit, _lastResizeId, [.. _resizes]) { ChargedBy = new Dictionary<long, long>(_chargedBy), ResizeAnswers = new Dictionary<long, TaskCompletionSource>(_resizeAnswers) };

    /// <summary>
    /// The next instance takes the failed one's books (<see cref="KeptBooks"/>): its held leases, released by their
    /// callers to this same actor, and its block, announced whole when the gatekeeper asks again; its actor callers are
    /// watched again, so one that stops releases its leases. Nothing when this is no restart.
    /// </summary>
    private void TakeOver(AgentBooks? books)
    {
        if (books is null)
        {
            return;
        }

        foreach (var (id, lease) in books.Held)
        {
            Hold(id, lease);
        }

        foreach (var (key, id) in books.ActorIds)
        {
            _idByActorRequest.Add(key, id);
            Context.Watch(key.Actor);
        }

        _fromBlock.UnionWith(books.FromBlock);
        _block = books.Block;
        _keepBlock = books.KeepBlock;
        _blockUsedSinceTick = true;
        _claimsSeen = books.ClaimsSeen;
        _settled.UnionWith(books.Settled);
        foreach (var (id, epoch) in books.ChargedBy)
        {
            _chargedBy.Add(id, epoch);
        }

        foreach (var (id, settle) in books.Unconfirmed)
        {
            _unconfirmed.Add(id, settle);
        }

        _lastSettle = books.LastSettle;
        _limit = books.Limit;
        _lastResizeId = books.LastResizeId;
        _resizes.AddRange(books.Resizes);
        foreach (var (id, answer) in books.ResizeAnswers)
        {
            _resizeAnswers.Add(id, answer);
        }
    }
}
