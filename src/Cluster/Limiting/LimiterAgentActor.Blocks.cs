using ActorQueue.Coordination;

namespace ActorQueue.Cluster;

// A node agent's block (see ClusterGatekeeperActor.Blocks.cs): permits the gatekeeper leased to this node as a whole.
// A plain one-permit request takes an unused one with no message when no request of this node waits before it (FIFO
// per node), and gives it back to the block when released. After a recall the unused part goes back at once and each
// block lease as it is released, until a grant leases a block again. The whole block, used or not, is announced to a
// new incarnation, which counts it before it grants anything.
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

    /// <summary>The block's unused permits.</summary>
    private int BlockFree => _block - _fromBlock.Count;

    /// <summary>Whether a request may be granted from a block: a plain one-permit request of an agent that leases blocks.</summary>
    private bool TakesBlock(PermitWaiter request) => _blocks.Enabled && request.Demand is { Permits: 1, Tokens: 0 };

    /// <summary>Grants a request from the block's unused permits, with no message, when nobody of this node waits before it.</summary>
    /// <returns>Whether it was taken so (granted, or released again at once when its caller cancelled meanwhile).</returns>
    private bool TryGrantFromBlock(long id, PermitWaiter request)
    {
        if (BlockFree <= 0 || _pending.Count != 0 || !TakesBlock(request))
        {
            return false;
        }

        _fromBlock.Add(id);
        Hold(id, request);
        _idByFacadeRequest.Remove(request);
        _blockUsedSinceTick = true;
        PublishLocal();
        var grant = new PermitGrant(id, request.Demand, ClusterSnapshot(_clusterCounts.Running, _clusterCounts.Waiting), Waited: false);
        if (!request.TryGrant(grant))
        {
            ReleaseHeld(id);
        }

        return true;
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

    /// <summary>The agent's timer while it holds a block (<c>actorqueue.cluster.limiter-block-linger</c>).</summary>
    private sealed class BlockLingerTick
    {
        public static readonly BlockLingerTick Instance = new();
    }
}
