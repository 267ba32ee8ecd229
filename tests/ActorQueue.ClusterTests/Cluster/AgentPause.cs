using System.Reflection;
using Akka.Actor;
using Akka.Dispatch;

namespace ActorQueue.Tests.Cluster;

/// <summary>
/// Holds a node's limiter agent (a plain limiter's or a partition's) between two messages until disposed: its mailbox is
/// suspended, which Akka does between messages, never inside one. An agent shuts its block loan for every message it
/// takes (the reclaim before the handler, the lend after it), and it takes messages of its own: a hello tick every
/// second, a block linger tick, a status it forwards. An attempt that must be granted from the block (or refused by the
/// block's limit alone) is made while paused, so it meets the loan as the last message left it, not shut by one under
/// way: unpaused, a tick taken at that moment refused it, more often on a loaded machine, where the agent's thread can
/// be preempted inside the message.
/// </summary>
internal sealed class AgentPause : IDisposable
{
    /// <summary>Akka's <c>Mailbox.IsSuspended()</c> (internal): set by the suspend, which the mailbox's run handles between messages.</summary>
    private static readonly MethodInfo IsSuspended =
        typeof(Mailbox).GetMethod("IsSuspended", BindingFlags.Instance | BindingFlags.NonPublic, Type.EmptyTypes)!;

    private readonly ActorCell _cell;

    private int _resumed;

    private AgentPause(ActorCell cell) => _cell = cell;

    /// <summary>Suspends <paramref name="agent"/>'s mailbox and waits until the agent has stopped between two messages.</summary>
    public static async Task<AgentPause> BetweenMessagesAsync(IActorRef agent)
    {
        var cell = (ActorCell)((ActorRefWithCell)agent).Underlying;
        cell.Suspend();
        var pause = new AgentPause(cell);
        try
        {
            await Poll.UntilAsync(() => (bool)IsSuspended.Invoke(cell.Mailbox, null)!, ClusterNodes.StepTimeout, "the agent stopped between two messages");
        }
        catch
        {
            pause.Dispose();
            throw;
        }

        return pause;
    }

    /// <summary>Resumes the agent (once, however often called): the messages sent meanwhile are handled, in order.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _resumed, 1) == 0)
        {
            _cell.Resume(null!);
        }
    }
}
