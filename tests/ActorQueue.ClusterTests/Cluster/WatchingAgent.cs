using ActorQueue.Cluster;
using Akka.Actor;

namespace ActorQueue.Tests.Cluster;

/// <summary>
/// The production limiter agent, which completes <paramref name="seen"/> once it has handled a message that
/// <paramref name="watched"/> picks (a grant with a block, a rejection): a test waits for the agent to have acted on it.
/// </summary>
internal sealed class WatchingAgent(LimiterAgentSetup setup, Func<object, bool> watched, TaskCompletionSource seen) : LimiterAgentActor(setup)
{
    /// <summary>Picks a grant that leased a block.</summary>
    public static bool BlockGranted(object message) => message is RemoteGranted { Block: > 0 };

    /// <summary>Picks a gatekeeper's rejection.</summary>
    public static bool Rejected(object message) => message is RemoteRejected;

    /// <inheritdoc />
    protected override bool AroundReceive(Receive receive, object message)
    {
        var handled = base.AroundReceive(receive, message);
        if (watched(message))
        {
            seen.TrySetResult();
        }

        return handled;
    }
}
