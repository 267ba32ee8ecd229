// snippet: limiter-actors
using Akka.Actor;
using Akka.Event;
using static ActorQueue.Actors.GatekeeperProtocol;

public sealed record Fetch(long Id, Uri Url);   // the requestId is a long you choose, unique among your pending requests

public sealed class Crawler : ReceiveActor
{
    public Crawler(IActorRef gatekeeper)
    {
        Receive<Fetch>(f => gatekeeper.Tell(new Acquire("crawler", f.Id)));        // reply comes to Self
        Receive<Queued>(q => Context.GetLogger().Info("waiting, {0} in line", q.WaitingCount));
        Receive<Granted>(g => { /* fetch, then: */ gatekeeper.Tell(new Release(g.LeaseId)); });
        Receive<Rejected>(r => Context.GetLogger().Warning(r.Reason));
    }
}
// end snippet
