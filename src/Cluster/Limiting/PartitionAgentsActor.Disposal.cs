using ActorQueue.Actors;
using Akka.Actor;
using Akka.Event;

namespace ActorQueue.Cluster;

/// <content>The parent's disposal, and a handler failure that costs only its message.</content>
internal sealed partial class PartitionAgentsActor
{
    /// <summary>
    /// Stops every agent behind what was routed to it, then this parent. Each agent is sent a stop of its own, an ordinary
    /// message behind those routed before, and the parent stops once all have stopped. (Stopped with its parent, by a
    /// system message, an agent took it before its mailbox: a resize the facade sent ahead of the dispose, routed here,
    /// was left in it, a dead letter, neither applied nor failed: Review/ClusterDisposalReviewTests.) Meanwhile what
    /// comes is a dead letter, as it was once this parent had stopped: a facade request is answered so (disposed).
    /// </summary>
    private void Dispose(DisposeGatekeeper message)
    {
        _disposeRequest = message;
        Become(() =>
        {
            Receive<AgentStopped>(stopped =>
            {
                Remove(stopped.Key);
                StopOnceAgentsStopped();
            });
            ReceiveAny(other => Context.System.DeadLetters.Tell(new DeadLetter(other, Sender, Self), Sender));
        });
        foreach (var (agent, _) in _agents.Values)
        {
            agent.Tell(new DisposeGatekeeper()); // completed by the agent's stop, or as a dead letter if it stopped before
        }

        StopOnceAgentsStopped();
    }

    /// <summary>
    /// Runs a handler; one that throws costs only its message (logged at Error), never a restart, as the agents' own
    /// handlers do. An ask it failed on (a partition's status, the statistics) is answered with the failure, not left to its
    /// timeout. A restart lost what this parent is: Akka's default one stops every agent by a system message, ahead of
    /// its mailbox (the leases it carries freed by the gatekeeper, its waiters failed, a resize routed to it and awaited
    /// left a dead letter: Review/ResizeSecondReadingRound39Tests), and the next instance starts with no agents; while
    /// disposing, its PostStop completed the dispose at once and the next instance, not disposing, lived on
    /// (Review/PartitionAgentsDisposalRound39Tests). A handler's books are a dictionary or two it changes as it ends, so
    /// nothing of them needs a restart to be put right.
    /// </summary>
    protected override bool AroundReceive(Receive receive, object message)
    {
        try
        {
            return base.AroundReceive(receive, message);
        }
        catch (Exception error)
        {
            if (_disposeRequest is null)
            {
                Context.GetLogger().Error(error, "Partitioned limiter {0}: its node's parent of the partition agents failed handling {1}; " +
                                                 "that message is dropped, its {2} agent(s) live on", _template.Name, message.GetType().Name, _agents.Count);
            }
            else
            {
                Context.GetLogger().Error(error, "Partitioned limiter {0}: its node's parent of the partition agents failed handling {1} while disposing; " +
                                                 "it still stops once its {2} agent(s) have", _template.Name, message.GetType().Name, _agents.Count);
                StopOnceAgentsStopped(); // the failed message may have been the last agent's stop, its entry removed
            }

            if (message is PartitionsParentAsk && !Sender.IsNobody())
            {
                Sender.Tell(new Status.Failure(error)); // its asker is answered now, not at its timeout
            }

            return true;
        }
    }

    /// <summary>While disposing: stops this parent once no agent it waits for is left.</summary>
    private void StopOnceAgentsStopped()
    {
        if (_agents.Count == 0)
        {
            Context.Stop(Self);
        }
    }
}
