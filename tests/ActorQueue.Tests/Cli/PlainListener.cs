using System.Net;
using System.Net.Sockets;
using ActorQueue.Tests.Cluster;

namespace ActorQueue.Tests.Cli;

/// <summary>
/// A plain TCP listener on a dead node's port, accepting and closing every connection: a peer reconnecting to it fails
/// its TLS handshake, and Akka shuts that peer's actor system down.
/// </summary>
internal sealed class PlainListener : IAsyncDisposable
{
    private readonly TcpListener _listener;

    private readonly Task _accepting;

    private PlainListener(TcpListener listener)
    {
        _listener = listener;
        _accepting = AcceptAndCloseAsync(listener);
    }

    /// <summary>Listens on <paramref name="port"/> once the dead process has let go of it.</summary>
    public static async Task<PlainListener> StartAsync(int port)
    {
        var listener = new TcpListener(IPAddress.Loopback, port);
        await Poll.UntilAsync(() => TryStart(listener), ClusterNodes.StepTimeout, $"port {port} is free again");
        return new PlainListener(listener);
    }

    public async ValueTask DisposeAsync()
    {
        _listener.Stop();
        await _accepting;
    }

    private static bool TryStart(TcpListener listener)
    {
        try
        {
            listener.Start();
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    private static async Task AcceptAndCloseAsync(TcpListener listener)
    {
        try
        {
            while (true)
            {
                using var client = await listener.AcceptTcpClientAsync();
            }
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            // Stopped by the test.
        }
    }
}
