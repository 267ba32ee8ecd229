using ActorQueue.Actors;
using ActorQueue.Coordination;
using ActorQueue.Telemetry;

namespace ActorQueue.Cluster;

// A cluster limiter's agent: the gatekeeper's answers to this node's requests (granted, queued, rejected) and the
// expiry of a request's wait.
internal partial class LimiterAgentActor
{
    private void HandleGranted(RemoteGranted message)
    {
        if (message.Epoch != _gatekeeper.Epoch)
        {
            return; // from an incarnation this agent no longer follows
        }

        if (message.RequestId == _fetchId)
        {
            FetchGranted(message);
            return;
        }

        // The cluster-wide counts as of this grant, as every grant of the incarnation followed brings them: also one for a
        // request no longer waiting (a block fetch a roll call ended meanwhile is granted so, and its block's permits were
        // held nowhere in this node's statistics: a node's partition showed its only permit free while its own caller held it).
        _clusterCounts.Publish(message.Running, message.Waiting);
        if (!_pending.Remove(message.RequestId, out var request))
        {
            if (message.Block > 0)
            {
                TakeBlock(null, message.Block);
            }

            return; // withdrawn meanwhile: the cancel frees a plain lease; a block is this node's now
        }

        Timers.Cancel(new WaitExpired(message.RequestId));
        HearRates(message.Rates);
        Hold(message.RequestId, request);
        if (request.Demand.Tokens > 0)
        {
            // The incarnation followed charged the grant. (A grant of no tokens needs no entry: its settle takes the same
            // either way, as there is nothing to give back.)
            _chargedBy[message.RequestId] = message.Epoch;
        }

        if (message.Block > 0)
        {
            TakeBlock(message.RequestId, message.Block);
        }

        _idByFacadeRequest.Remove(request);
        PublishLocal();
        var grant = new PermitGrant(message.RequestId, request.Demand, ClusterSnapshot(message.Running, message.Waiting), Waited: true);
        if (!request.TryGrant(grant))
        {
            ReleaseHeld(message.RequestId); // the caller cancelled at the same moment
        }
    }

    private void HandleQueued(RemoteQueued message)
    {
        if (message.Epoch != _gatekeeper.Epoch || !_pending.TryGetValue(message.RequestId, out var request))
        {
            return;
        }

        _clusterCounts.Publish(message.Running, message.Waiting);
        request.OnQueued(ClusterSnapshot(message.Running, message.Waiting));
    }

    private void HandleRejected(RemoteRejected message)
    {
        if (message.Epoch == _gatekeeper.Epoch && message.RequestId == _fetchId)
        {
            FetchEnded(gotBlock: false);
            return;
        }

        if (message.Epoch != _gatekeeper.Epoch || !_pending.Remove(message.RequestId, out var request))
        {
            return;
        }

        if (message.Kind is PermitRejectionKind.QueueFull or PermitRejectionKind.WouldWait && BlockFree > 0)
        {
            // Refused for want of a free permit, but a block this node's fetch brought meanwhile holds one unused: the
            // gatekeeper granted the fetch just before this request (a caller that tried, then acquired), lending the
            // permit this request was refused for to this very node. Served from the block, as a request that came after
            // the block is; before, a limit of one with no queue refused the node's first request (HTTP 429) while its
            // own block held the only permit unused (ClusterBlockFetchRaceRound52Tests). Requests of this node sent after
            // it may still be pending: it goes first, as it came first.
            Timers.Cancel(new WaitExpired(message.RequestId));
            if (TryGrantFromBlock(message.RequestId, request))
            {
                return;
            }
        }

        Forget(message.RequestId, request);
        if (request is ClusterAcquireRequest facade)
        {
            facade.RetryAfter = message.RetryAfter; // before the failure, which the caller reads it after
        }

        request.Fail(RejectionError(message, request));
    }

    /// <summary>The exception a caller gets for a rejection: what it asked is too large, it may not wait, or the queue is full.</summary>
    private Exception RejectionError(RemoteRejected message, PermitWaiter request) => message.Kind switch
    {
        PermitRejectionKind.ExceedsLimit => ExceedsLimit(message, request),
        PermitRejectionKind.WouldWait => new ConcurrencyWaitTimeoutException(_displayName, TimeSpan.Zero, request.Demand.Permits, request.Source),
        PermitRejectionKind.Evicted => new ConcurrencyLimitExceededException(message.MaxQueued, $"cluster limiter {_displayName}", request.Priority), // an actor hears Evicted
        _ => new ConcurrencyLimitExceededException(message.QueueDepth, message.MaxQueued, _displayName),
    };

    /// <summary>
    /// A request the gatekeeper can never grant, worded by what exceeds: a model-API call asks one slot, so for it only
    /// its tokens can exceed the tokens per period; any other request exceeds the permits. The error names the caller's
    /// parameter (the facade's, or a <c>RateLimiter</c> adapter's <c>permitCount</c>).
    /// </summary>
    private ArgumentOutOfRangeException ExceedsLimit(RemoteRejected message, PermitWaiter request)
    {
        var tokens = request.Demand.Tokens > 0;
        var name = (request as ClusterAcquireRequest)?.ArgumentName ?? (tokens ? "estimatedTokens" : "permits");
        return new ArgumentOutOfRangeException(name, message.Requested, tokens
            ? $"{name} ({message.Requested}) exceeds tokens per period ({message.Limit}) of cluster limiter {_displayName}: the call could never be granted"
            : $"{name} must be <= max_running ({message.Limit}) of cluster limiter {_displayName}, got {message.Requested}");
    }

    /// <summary>A waiting request's wait timeout passed on this node: it is withdrawn here and at the gatekeeper, and fails.</summary>
    private void HandleWaitExpired(WaitExpired message)
    {
        if (!_pending.Remove(message.RequestId, out var request))
        {
            return; // answered meanwhile
        }

        Forget(message.RequestId, request);
        Send(new RemoteCancel(_gatekeeper.Epoch, message.RequestId)); // a grant already on its way is released by the cancel
        request.Fail(new ConcurrencyWaitTimeoutException(_displayName, request.Timeout.GetValueOrDefault(), request.Demand.Permits, request.Source));
        // After the caller heard: a metrics listener is the application's code, and one that throws costs its measurement only.
        _listenerFailures.Add(ActorQueueTelemetry.LimiterWaitTimeoutsCounter, 1,
            new KeyValuePair<string, object?>(ActorQueueTelemetry.LimiterNameTag, PartitionAgentsActor.MetricName(_name))); // a partition's: its limiter's name, no key
    }
}
