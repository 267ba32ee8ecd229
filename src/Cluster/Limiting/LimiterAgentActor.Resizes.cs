using Akka.Event;

namespace ActorQueue.Cluster;

// A node agent's resizes: each numbered and kept until a LimitChanged names it applied, and sent again to every new
// incarnation it announces itself to (see LimiterAgentActor.Recovery.cs), since one sent to an incarnation that was
// stopping is lost; the gatekeeper applies each id once (ClusterGatekeeperActor), so a replay never undoes a newer one.
internal partial class LimiterAgentActor
{
    /// <summary>The last resize id given out (<see cref="ResizeLimiter.Id"/>); ids are never reused.</summary>
    private long _lastResizeId;

    /// <summary>
    /// The resizes sent and not yet named applied by a <see cref="LimitChanged"/>, oldest first: sent again to every new
    /// incarnation this agent announces itself to, since one sent to an incarnation that was stopping is lost.
    /// </summary>
    private readonly List<ResizeLimiter> _resizes = [];

    /// <summary>
    /// Where the kept resizes (<see cref="_resizes"/>) last went, in order: the incarnation followed, or
    /// <see cref="ThroughHub"/>; <c>null</c> when unknown (an instance after a restart carries them from the failed one).
    /// </summary>
    private object? _resizesWentTo;

    /// <summary>Stands for the hub in <see cref="_resizesWentTo"/>.</summary>
    private static readonly object ThroughHub = new();

    /// <summary>
    /// A resize of this node (the facade's, an actor's, a partition's): numbered, kept until applied, and sent. Sent
    /// another way than the older ones kept (through the hub after a loss or a restart, or to another incarnation), it
    /// goes behind them, sent again first, in order: an older one may have been lost (sent to an incarnation that
    /// stopped before taking it) and, this one applied first, its newer number made the gatekeeper skip the older one
    /// for good when it came again after the next announcement (a resize of the queue bound lost to one of the running
    /// limit two instances failed on: Review/AgentLeftoversRound2ReviewTests). One taken already is skipped there.
    /// </summary>
    private void Resize(ResizeLimiter message)
    {
        var way = (object?)_gatekeeper.Current ?? ThroughHub;
        var again = Equals(way, _resizesWentTo) ? _resizes.Count : 0;
        _resizes.Add(message with { Id = ++_lastResizeId });
        foreach (var resize in _resizes.Skip(again))
        {
            Send(resize);
        }

        _resizesWentTo = way;
    }

    /// <summary>
    /// The answers awaited by callers of <see cref="ClusterConcurrencyLimiter.ResizeAsync"/>, by resize id: completed once a
    /// <see cref="LimitChanged"/> names the resize applied (after the limit is published), failed as this agent stops for
    /// good (with <see cref="InvalidOperationException"/> if it stopped unasked: not disposed). Kept across restarts.
    /// </summary>
    private readonly Dictionary<long, TaskCompletionSource> _resizeAnswers = [];

    /// <summary>A facade's resize whose caller awaits the answer: sent as any other, its answer booked under its id.</summary>
    /// <remarks>
    /// Booked before it is sent, so a failure once it is kept (sent again after the next announcement, and applied) leaves
    /// its caller answered when it is applied; one that fails before it is kept is unbooked, and the handler's failure
    /// fails its caller (<see cref="ReceiveKeepingBooks"/>). Booked after, a failure left its caller waiting for ever
    /// (Review/ResizeSecondReadingRound39Tests).
    /// </remarks>
    private void HandleAwaitedResize(AwaitedResize message)
    {
        var id = _lastResizeId + 1;
        _resizeAnswers.Add(id, message.Applied);
        try
        {
            Resize(message.Resize);
        }
        catch
        {
            if (!_resizes.Exists(kept => kept.Id == id))
            {
                _resizeAnswers.Remove(id);
            }

            throw;
        }
    }

    /// <summary>Completes the answers of this agent's resizes up to <paramref name="applied"/> (named applied by the gatekeeper).</summary>
    private void AnswerApplied(long applied)
    {
        foreach (var id in _resizeAnswers.Keys.Where(id => id <= applied).ToList())
        {
            _resizeAnswers.Remove(id, out var answer);
            answer!.TrySetResult();
        }
    }

    /// <summary>
    /// At this agent's stop for good: each awaited resize not heard applied fails its caller, saying what became of it
    /// (sent; applied unless the incarnation it reached stops before taking it). Before, its caller had no answer at all,
    /// only the warning below (Review/ResizeAnswerRound39Tests). Stopped unasked — neither failed nor by a dispose (a
    /// partition's agent by a routed message) — it says so: it was failed as disposed before
    /// (Review/AgentStoppedUnaskedRound40SecondReadingTests). Stopped by its actor system's shutdown, it says that, as an
    /// <see cref="ObjectDisposedException"/>: the node is going away (Review/SystemShutdownAgentRound41Tests).
    /// </summary>
    private void FailUnappliedResizeAnswers(Exception? failedWith)
    {
        foreach (var (id, answer) in _resizeAnswers)
        {
            var resize = _resizes.Find(kept => kept.Id == id);
            var what = $"its resize ({resize?.Bounds ?? "max_running unchanged, max_queued unchanged"}) " +
                       "not heard applied: it was sent, and the gatekeeper incarnation it reached applies it unless that incarnation stops before taking it (nobody sends it again)";
            answer.TrySetException(failedWith is not null
                ? new InvalidOperationException($"The node agent of cluster limiter '{_displayName}' failed and stopped with {what}.", failedWith)
                : _disposeRequest is not null
                    ? new ObjectDisposedException(nameof(ClusterConcurrencyLimiter), $"The cluster limiter '{_displayName}' was disposed with {what}.")
                    : SystemShutdown.IsUnderway(Self)
                        ? new ObjectDisposedException(nameof(ClusterConcurrencyLimiter), $"The actor system of cluster limiter '{_displayName}' is shutting down: its node agent stopped with {what}.")
                        : new InvalidOperationException($"The node agent of cluster limiter '{_displayName}' stopped, while the limiter was not disposed, with {what}."));
        }

        _resizeAnswers.Clear();
    }

    /// <summary>
    /// At this agent's stop (the node's limiter disposed): its resizes not yet heard applied are sent again by nobody. Sent
    /// to the incarnation it followed, each is applied unless that incarnation stops before taking it — then it is lost,
    /// so it is logged here, not dropped in silence. The dispose does not wait for the answer: it completes promptly, with
    /// the gatekeeper out of reach too. (Dropped without a word before: Review/ClusterLeftoversReviewTests.)
    /// </summary>
    private void WarnOfUnappliedResizes()
    {
        if (_resizes.Count != 0)
        {
            var last = _resizes[^1];
            _log.Warning("Cluster limiter {0}: this node's limiter stopped with {1} resize(s) not yet heard applied (the last: max_running {2}, " +
                         "max_queued {3}); each is applied unless the gatekeeper incarnation it went to stops before taking it, and is then lost",
                _displayName, _resizes.Count, last.MaxRunning?.ToString() ?? "unchanged", last.MaxQueued?.ToString() ?? "unchanged");
        }
    }

    /// <summary>
    /// A newer limit (a resize, here or on another node): the facade reads it, and this agent announces it to a next
    /// incarnation. Whatever its version, the resizes of this agent it names applied are done with.
    /// </summary>
    private void HandleLimitChanged(LimitChanged message)
    {
        var applied = message.Applied.IdOf(Self);
        if (applied > 0)
        {
            _resizes.RemoveAll(resize => resize.Id <= applied);
        }

        if (message.Version > _limit.Version)
        {
            _limit = message;
            _limits.Publish(message);
        }

        if (applied > 0)
        {
            AnswerApplied(applied); // after the publish: an awaiting caller reads the limit it asked for (or a newer one)
        }
    }
}
