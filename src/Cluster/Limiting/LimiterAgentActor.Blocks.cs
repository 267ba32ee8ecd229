using ActorQueue.Actors;
using ActorQueue.Coordination;
using ActorQueue.Telemetry;
using Akka.Event;

namespace ActorQueue.Cluster;

// A node agent's block (see ClusterGatekeeperActor.Blocks.cs): permits the gatekeeper leased to this node as a whole.
// A plain one-permit request takes an unused one with no message when no request of this node waits before it (FIFO
// per node), and gives it back to the block when released. After a recall the unused part goes back at once and each
// block lease as it is released, until a grant leases a block again. The whole block, used or not, is announced to a
// new incarnation, which counts it before it grants anything.
//
// Between its messages the agent lends the block's unused permits to synchronous callers (the RateLimiter adapter's
// AttemptAcquire(1)) through its local counts' PermitLoan, as a local gatekeeper lends its free permits: lent at the
// end of a message while nobody of this node waits or is on its way (a facade request announces itself in the loan
// before it is sent) and the block is not recalled; reclaimed at the start of every message, so inside a message the
// agent's books are exact. A claimed lease is a block lease in use (_claimed); it goes back into the open loan, or by
// a local message (ReleaseClaimedLease) to the agent, which keeps it in the block or, after a recall, returns it.
internal partial class LimiterAgentActor
{
    /// <summary>Whether this agent asks for blocks and how long an unused block lingers.</summary>
    private readonly LimiterBlockSettings _blocks;

    /// <summary>The block leases held now (their ids are in <see cref="_held"/> too), released into the block.</summary>
    private readonly HashSet<long> _fromBlock = [];

    /// <summary>The permits leased to this node as a block: its block leases held and the unused rest.</summary>
    private int _block;

    /// <summary>Whether released block leases stay in the block; <c>false</c> from a recall until a block is granted again.</summary>
    private bool _keepBlock;

    /// <summary>Whether a block lease was granted since the last linger tick.</summary>
    private bool _blockUsedSinceTick;

    /// <summary>
    /// The block leases claimed from the loan and not yet given back to the agent (into the loan, or by
    /// <see cref="ReleaseClaimedLease"/>): exact inside a message, where the loan's held count is this node's held
    /// permits and these (<see cref="ReclaimBlockLoan"/>).
    /// </summary>
    private int _claimed;

    /// <summary>The loan's claim count as of the last reclaim: a claim since counts as a use of the block for its linger.</summary>
    private long _claimsSeen;

    /// <summary>The block's unused permits: neither granted by the agent nor claimed from its loan.</summary>
    private int BlockFree => _block - _fromBlock.Count - _claimed;

    /// <summary>The id of the block fetch on its way to the gatekeeper (<see cref="HandleWantBlock"/>); 0 for none.</summary>
    private long _fetchId;

    /// <summary>A wish came while this agent followed no gatekeeper: it fetches once an incarnation's roll call makes it follow one (<see cref="FetchWishedBeforeFollowing"/>).</summary>
    private bool _fetchOnFollow;

    /// <summary>The source a block fetch names at the gatekeeper, for its logs (the gatekeeper knows a fetch by <see cref="RemoteAcquire.Fetch"/>).</summary>
    internal const string BlockFetchSource = "block-fetch";

    /// <summary>Shared with the facade: whether a wish for a block is on its way or being answered, and how long to stay quiet after one.</summary>
    private readonly BlockWish _wish;

    /// <summary>A partition's agent: requests of its stripe's keys without a partition on their way to the parent (<see cref="LimiterAgentSetup.Routing"/>); nothing is lent while any is.</summary>
    private readonly RoutingCount? _routing;

    /// <summary>A partition's agent: its key's requests on their way to the parent (<see cref="LimiterAgentSetup.OnTheWay"/>); nothing is lent while any is.</summary>
    private readonly RoutingCount? _onTheWay;

    /// <summary>The loan the block's unused permits are lent through; its held half is this node's held permits (<see cref="PublishLocal"/>).</summary>
    private PermitLoan Loan => _localCounts.Loan;

    /// <summary>Whether a request may be granted from a block: a plain one-permit request of an agent that leases blocks.</summary>
    private bool TakesBlock(PermitWaiter request) => _blocks.Enabled && request.Demand is { Permits: 1, Tokens: 0 };

    /// <summary>Whether a request of this node with an id below <paramref name="id"/> is pending: no allocation, and nothing to look through in the common case of none (a grant from the block is the message-free path).</summary>
    private bool PendingBefore(long id)
    {
        if (_pending.Count == 0)
        {
            return false;
        }

        foreach (var pending in _pending.Keys)
        {
            if (pending < id)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Grants a request from the block's unused permits, with no message, when nobody of this node waits before it.</summary>
    /// <param name="id">The request's id: ids ascend with arrival, so a pending request with a smaller one is before it (a
    /// new request is the newest; one the gatekeeper refused, <see cref="HandleRejected"/>, may have younger ones pending).</param>
    /// <param name="request">The request, not pending.</param>
    /// <returns>Whether it was taken so (granted, or released again at once when its caller cancelled meanwhile).</returns>
    private bool TryGrantFromBlock(long id, PermitWaiter request)
    {
        if (BlockFree <= 0 || !TakesBlock(request) || PendingBefore(id))
        {
            return false;
        }

        _fromBlock.Add(id);
        Hold(id, request);
        _idByFacadeRequest.Remove(request);
        _blockUsedSinceTick = true;
        PublishLocal();
        var grant = new PermitGrant(id, request.Demand, ClusterSnapshot(_clusterCounts.Running, _clusterCounts.Waiting), Waited: false);
        if (request.TryGrant(grant))
        {
            MeterAcquired(1); // the gatekeeper never hears of it
        }
        else
        {
            ReleaseHeld(id);
        }

        return true;
    }

    /// <summary>
    /// Counts <paramref name="leases"/> granted from the block on this node (by the agent, or claimed from its loan) as
    /// acquired, as the gatekeeper counts its grants, tagged with the limiter's name (a partition's: its limiter's).
    /// </summary>
    private void MeterAcquired(long leases)
    {
        if (ActorQueueTelemetry.LimiterAcquiredCounter.Enabled)
        {
            _listenerFailures.Add(ActorQueueTelemetry.LimiterAcquiredCounter, leases,
                new KeyValuePair<string, object?>(ActorQueueTelemetry.LimiterNameTag, PartitionAgentsActor.MetricName(_name)));
        }
    }

    /// <summary>
    /// A grant came with a block of <paramref name="permits"/>: request <paramref name="id"/> holds one of them, or none
    /// when it was withdrawn meanwhile (the gatekeeper ignores the cancel of a request it granted with a block, so the
    /// block is taken all the same and its unused permits go back like any).
    /// </summary>
    private void TakeBlock(long? id, int permits)
    {
        _block += permits;
        if (id is { } lease)
        {
            _fromBlock.Add(lease);
        }

        _keepBlock = true;
        _blockUsedSinceTick = true;
        if (!Timers.IsTimerActive(BlockLingerTick.Instance))
        {
            Timers.StartPeriodicTimer(BlockLingerTick.Instance, BlockLingerTick.Instance, _blocks.Linger);
        }
    }

    /// <summary>A released lease of the block goes back into it, or to the gatekeeper after a recall.</summary>
    /// <returns>Whether it was a block lease.</returns>
    private bool ReleaseToBlock(long id)
    {
        if (!_fromBlock.Remove(id))
        {
            return false;
        }

        if (!_keepBlock)
        {
            ReturnBlock(1);
        }

        return true;
    }

    /// <summary>Someone waits at the gatekeeper (or the limit shrank): the unused part goes back now, the rest as it is released.</summary>
    private void HandleBlockRecall(BlockRecall message)
    {
        if (message.Epoch == _gatekeeper.Epoch)
        {
            _keepBlock = false;
            ReturnBlock(BlockFree);
        }
    }

    /// <summary>No block lease was granted for a whole linger: the unused part goes back, so an idle node holds no permits.</summary>
    private void HandleBlockLinger()
    {
        if (!_blockUsedSinceTick)
        {
            ReturnBlock(BlockFree);
        }

        _blockUsedSinceTick = false;
    }

    private void ReturnBlock(int permits)
    {
        if (permits <= 0)
        {
            return;
        }

        _block -= permits;
        Send(new BlockReturn(_gatekeeper.Epoch, permits));
        if (_block == 0)
        {
            Timers.Cancel(BlockLingerTick.Instance);
        }
    }

    /// <summary>
    /// Start of every message: shuts the loan (closed stays closed) and takes its held count, so what was lent and not
    /// claimed is in <see cref="BlockFree"/> again and the leases claimed are in <see cref="_claimed"/>.
    /// </summary>
    private void ReclaimBlockLoan()
    {
        if (!_blocks.Enabled)
        {
            return; // never lent: the loan is the local counts' word only
        }

        Loan.Reclaim(out var held); // what nobody claimed needs no count: BlockFree follows from the held permits
        _localCounts.NoteHeld(held);
        _claimed = held - _heldPermits;
        System.Diagnostics.Debug.Assert(_claimed >= 0 && _claimed <= _block, $"claimed {_claimed} of a block of {_block}");
        if (Loan.Claims is var claims && claims != _claimsSeen)
        {
            MeterAcquired(claims - _claimsSeen); // the leases claimed since the last reclaim, counted here rather than on the claimers' threads
            _claimsSeen = claims;
            _blockUsedSinceTick = true;
        }
    }

    /// <summary>
    /// End of every message: publishes this node's counts and, while nobody of this node waits or is on its way, the
    /// block is kept (not recalled) and the agent is not stopping, lends the block's unused permits (a spent loan still
    /// takes returns, which the next claimer finds).
    /// </summary>
    private void LendBlock()
    {
        if (!_blocks.Enabled)
        {
            return;
        }

        PublishLocal(); // the loan's held count: what the next reclaim counts claims against
        if (_keepBlock && _block > 0 && _pending.Count == 0 && _disposeRequest is null && !Loan.HasAnnounced && _onTheWay?.Any != true && _routing?.Any != true)
        {
            _ = Loan.Lend(_heldPermits + _claimed, Math.Min(BlockFree, PermitLoan.MaxLent)); // fails on a suspended or closed loan
        }
    }

    /// <summary>
    /// A claimed lease released while the loan was shut or closed: it is back in the block, or after a recall goes back
    /// to the gatekeeper; a release the books cannot place (none claimed) changes nothing.
    /// </summary>
    private void HandleClaimedRelease(ReleaseClaimedLease message)
    {
        var permits = Math.Min(message.Permits, _claimed);
        if (permits <= 0)
        {
            _log.Warning("Cluster limiter {0}: release of a claimed lease of {1} permit(s) with {2} claimed ignored", _displayName, message.Permits, _claimed);
            return;
        }

        _claimed -= permits;
        PublishLocal();
        if (!_keepBlock)
        {
            ReturnBlock(permits);
        }
    }

    /// <summary>
    /// A synchronous attempt found no block permit lent (<see cref="WantBlock"/>): while this node holds no unused block
    /// permit and none of its requests waits, ask the gatekeeper for a block with a one-permit request that may not
    /// wait, so a node whose callers only try (and shed) is leased a block too. One at a time; after one that brought no
    /// block, or when the agent follows no gatekeeper yet (it says hello, and fetches once it follows one), the facade
    /// stays quiet for a while.
    /// </summary>
    private void HandleWantBlock()
    {
        if (_fetchId != 0)
        {
            return; // its answer ends the wish
        }

        if (!_blocks.Enabled || _disposeRequest is not null || BlockFree > 0 || _pending.Count != 0)
        {
            _wish.Handled(FetchQuiet); // granted from the block or queued here: AcquireAsync callers bring blocks
            return;
        }

        if (_gatekeeper.Current is null)
        {
            _gatekeeper.HelloIfUnfollowed(Self); // the incarnation's roll call makes this agent follow it
            _fetchOnFollow = true;
            _wish.Handled(FetchQuiet);
            return;
        }

        _fetchId = ++_lastId;
        Send(new RemoteAcquire(_gatekeeper.Epoch, _fetchId, BlockFetchSource) { Permits = 1, MayWait = false, Block = true, Fetch = true });
    }

    /// <summary>
    /// Just after this agent answered an incarnation's roll call: the block a wish asked for while it followed none, if
    /// one did, now (behind the announcement, so the incarnation knows this node when it comes). Otherwise a fresh node
    /// whose callers only try would wait for a later attempt after the quiet while.
    /// </summary>
    private void FetchWishedBeforeFollowing()
    {
        if (_fetchOnFollow)
        {
            _fetchOnFollow = false;
            HandleWantBlock();
        }
    }

    /// <summary>
    /// The gatekeeper granted the fetch: with a block, every permit of it unused (the fetch holds none); a plain lease
    /// (which the gatekeeper gives only with a block, as it grants such a request only when it leases one) goes back.
    /// </summary>
    private void FetchGranted(RemoteGranted message)
    {
        _clusterCounts.Publish(message.Running, message.Waiting);
        if (message.Block > 0)
        {
            TakeBlock(null, message.Block);
        }
        else
        {
            Send(new RemoteRelease(_gatekeeper.Epoch, message.RequestId));
        }

        FetchEnded(message.Block > 0);
    }

    /// <summary>The fetch was answered (or will never be): the facade may wish again, at once after a block, else after a quiet while.</summary>
    private void FetchEnded(bool gotBlock)
    {
        _fetchId = 0;
        _wish.Handled(gotBlock ? TimeSpan.Zero : FetchQuiet);
    }

    /// <summary>How long the facade sends no wish after one that brought no block: the linger, at most a second.</summary>
    private TimeSpan FetchQuiet => _blocks.Linger < TimeSpan.FromSeconds(1) ? _blocks.Linger : TimeSpan.FromSeconds(1);

    /// <summary>The agent's timer while it holds a block (<c>actorqueue.cluster.limiter-block-linger</c>).</summary>
    private sealed class BlockLingerTick
    {
        public static readonly BlockLingerTick Instance = new();
    }
}
