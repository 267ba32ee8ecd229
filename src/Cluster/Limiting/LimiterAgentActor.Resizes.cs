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

    /// <summary>A resize of this node (the facade's, an actor's, a partition's): numbered, kept until applied, and sent.</summary>
    private void Resize(ResizeLimiter message)
    {
        var resize = message with { Id = ++_lastResizeId };
        _resizes.Add(resize);
        Send(resize);
    }

    /// <summary>
    /// A newer limit (a resize, here or on another node): the facade reads it, and this agent announces it to a next
    /// incarnation. Whatever its version, the resizes of this agent it names applied are done with.
    /// </summary>
    private void HandleLimitChanged(LimitChanged message)
    {
        if (message.Applied.IdOf(Self) is var applied and > 0)
        {
            _resizes.RemoveAll(resize => resize.Id <= applied);
        }

        if (message.Version > _limit.Version)
        {
            _limit = message;
            _limits.Publish(message);
        }
    }
}
