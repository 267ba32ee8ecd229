using Akka.Actor;
using Akka.Event;

namespace ActorQueue.Tests.Cluster;

/// <summary>
/// Counts the incoming connections a node rejected in the TLS handshake (Akka's DotNetty transport logs each:
/// "Rejected incoming connection from [...] due to TLS handshake failure"), whatever the reason: no TLS, no client
/// certificate, or one its validator refused.
/// </summary>
internal sealed class TlsRejections
{
    /// <summary>The text of Akka's warning for a rejected incoming connection.</summary>
    public const string Marker = "due to TLS handshake failure";

    private int _count;

    public TlsRejections(ActorSystem node)
    {
        var listener = node.ActorOf(Props.Create(() => new Listener(this)));
        node.EventStream.Subscribe(listener, typeof(Warning));
    }

    public int Count => Volatile.Read(ref _count);

    /// <summary>Completes when the node rejected one more connection than it had when this was called.</summary>
    public Task NextAsync()
    {
        var before = Count;
        return Poll.UntilAsync(() => Count > before, ClusterNodes.StepTimeout, "the node rejected a TLS handshake", TimeSpan.FromMilliseconds(10));
    }

    private sealed class Listener : ReceiveActor
    {
        public Listener(TlsRejections rejections) =>
            Receive<Warning>(warning => warning.Message?.ToString()?.Contains(Marker, StringComparison.Ordinal) == true, _ => Interlocked.Increment(ref rejections._count));
    }
}
