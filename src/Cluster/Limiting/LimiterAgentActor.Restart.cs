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
            request.Fail(stopped);
        }

        _pending.Clear();
        if (_restarting)
        {
            // Restarted: the next instance lends through this same loan, so it is only shut, with its held count (the
            // claimed leases in it), and takes the held leases and the block, whose claims are then its own.
            _localCounts.Loan.Reclaim(out var held);
            _localCounts.NoteHeld(held);
            _carry.Keep(KeptBooks());
            _localCounts.Publish(held, 0);
        }
        else
        {
            _localCounts.Loan.Close(); // claimed leases released from now on go nowhere: the gatekeeper frees the block with this agent
            _localCounts.Publish(0, 0);
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

    /// <summary>
    /// The agent fails outside its handlers on <paramref name="message"/>: if it failed before the handler could run (its
    /// loan's reclaim threw), the message is handed to the next instance ahead of what its mailbox holds (stashed: Akka
    /// puts the stash back at the mailbox's front as the instance is replaced), since Akka's restart drops it. (Sent to
    /// this same actor, behind the mailbox, it was overtaken: an actor's ask and its cancel queued behind it, the cancel
    /// found nothing and the ask was then granted, the permit held for good: Review/AgentCarryRound2ReviewTests.)
    /// Dropped, a lease's release left the lease, carried, counted for ever, and a facade request was never answered.
    /// Once per message: one that fails again before its handler is answered here (<see cref="AnswerUnhandled"/>), not
    /// handed on again; once it reached its handler, the same object failed on later (every status ask is one) is handed on again. (Dropped with a log line before, a facade caller awaited it for ever: Review/AgentFailsTwiceReviewTests.)
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
        if (message is ClusterAcquireRequest or WithdrawWaiter or GetLimiterStatus)
        {
            _routed--;
        }

        ((IActorStash)this).Stash.Prepend([new Envelope(message, Sender)]);
    }

    /// <summary>
    /// A message two instances failed on before its handler (<see cref="RedeliverUnhandled"/>) is not handed on again (a
    /// defect that fails every instance would hand it on for ever), nor dropped. The request it carries is answered with
    /// an <see cref="InvalidOperationException"/> naming the limiter and the cause, as after a handler's failure
    /// (<see cref="AnswerFailedMessage"/>): a facade request (and its announcement in the loan ended, as its handler
    /// would have: the loan lent nothing again), an actor's acquire (told <c>Rejected</c> with the cause; the release a
    /// release-and-acquire carries goes on as a release); a status ask is answered with a <see cref="Status.Failure"/>. A release (of a
    /// facade's, an actor's or a claimed lease, which the next instance carries) is sent to the agent once more, behind
    /// its mailbox (no message behind a release depends on its order); one that fails so again is given up, its lease
    /// counted until its node leaves, and said so in the log. A resize is booked (numbered and kept, as its handler
    /// would: the next instance sends it with its announcement, in order). A withdrawal, an actor's cancel and a
    /// gatekeeper's reply need nothing: the failed instance's stop failed the waits they are about, and the next
    /// instance's announcement leaves those out, so the gatekeeper frees them. Each is logged with the count so far
    /// (<see cref="AgentCarry.Unhandled"/>). Runs in the failing instance, before its stop carries its books: nothing
    /// here changes the held count or sends to the gatekeeper.
    /// </summary>
    private void AnswerUnhandled(object message, Exception error)
    {
        var failure = Failure("failed twice before handling this request", error);
        var outcome = "what it was about needs no answer";
        switch (message)
        {
            case ClusterAcquireRequest or GatekeeperProtocol.Acquire:
                outcome = "its caller is failed";
                if (message is ClusterAcquireRequest { Announced: true })
                {
                    Loan.Leave();
                }

                break;
            case GetLimiterStatus:
                outcome = "its asker is failed";
                Sender.Tell(new Status.Failure(failure));
                break;
            case GatekeeperProtocol.ReleaseAndAcquire both:
                outcome = "its acquire is failed and its release sent to the agent once more";
                Resend(new GatekeeperProtocol.Release(both.LeaseId));
                break;
            case ReleaseAgentLease or ReleaseClaimedLease or GatekeeperProtocol.Release when !_carry.Resent.Remove(message):
                outcome = "it is sent to the agent once more";
                Resend(message);
                break;
            case ReleaseAgentLease or ReleaseClaimedLease or GatekeeperProtocol.Release:
                outcome = "sent once more, it failed so again: its lease stays counted until this node leaves the cluster";
                break;
            case ResizeLimiter resize:
                outcome = "it is booked, and sent with the next instance's announcement";
                _resizes.Add(resize with { Id = ++_lastResizeId });
                break;
        }

        var (id, request) = RequestOf(message);
        AnswerFailedMessage(message, id, request, failure);
        _log.Error(error, "Cluster limiter {0}: its node agent failed twice before handling {1} ({2} such message(s) so far); {3}",
            _displayName, message.GetType().Name, ++_carry.Unhandled, outcome);
    }

    /// <summary>Sends a release to this agent once more, from its sender, marked so that it is not sent a third time.</summary>
    private void Resend(object release)
    {
        _carry.Resent.Add(release);
        Self.Tell(release, Sender);
    }

    /// <summary>The failed instance's books its callers depend on: the held leases (its actors' among them), the block and the resizes.</summary>
    private AgentBooks KeptBooks() => new(
        new Dictionary<long, PermitWaiter>(_held),
        _idByActorRequest.Where(entry => _held.ContainsKey(entry.Value)).ToDictionary(),
        [.. _fromBlock], _block, _keepBlock, _claimsSeen,
        [.. _settled.Where(_held.ContainsKey)], new Dictionary<long, RemoteSettle>(_unconfirmed), _lastSettle,
        _limit, _lastResizeId, [.. _resizes]);

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
        foreach (var (id, settle) in books.Unconfirmed)
        {
            _unconfirmed.Add(id, settle);
        }

        _lastSettle = books.LastSettle;
        _limit = books.Limit;
        _lastResizeId = books.LastResizeId;
        _resizes.AddRange(books.Resizes);
    }
}
