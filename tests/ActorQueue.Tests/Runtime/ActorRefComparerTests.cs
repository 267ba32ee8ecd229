using ActorQueue.Runtime;
using Akka.Actor;

namespace ActorQueue.Tests.Runtime;

/// <summary>
/// The uid-hashing comparer the gatekeeper and the queue router key their books by: refs without a uid (every
/// <c>Ask</c>'s temporary actor has 0) do not all share one hash.
/// </summary>
public class ActorRefComparerTests : ActorQueueTestKit
{
    [Fact]
    public async Task Temporary_ask_refs_hash_by_their_path_not_by_their_missing_uid()
    {
        var echo = Sys.ActorOf(Props.Create(() => new SenderEcho()));
        var first = await echo.Ask<IActorRef>("who", TimeSpan.FromSeconds(10));
        var second = await echo.Ask<IActorRef>("who", TimeSpan.FromSeconds(10));

        Assert.Equal((0L, 0L), (first.Path.Uid, second.Path.Uid));
        Assert.Equal(first.GetHashCode(), ActorRefComparer.Instance.GetHashCode(first));
        Assert.NotEqual(ActorRefComparer.Instance.GetHashCode(first), ActorRefComparer.Instance.GetHashCode(second));
        Assert.False(ActorRefComparer.Instance.Equals(first, second));
    }

    private sealed class SenderEcho : ReceiveActor
    {
        public SenderEcho() => Receive<string>(_ => Sender.Tell(Sender));
    }
}
