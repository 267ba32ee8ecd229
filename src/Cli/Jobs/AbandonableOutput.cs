using System.Buffers;

namespace ActorQueue.Cli.Jobs;

/// <summary>
/// The runner's stdout or stderr, whose writes the runner's kill abandons: a write still blocked <see cref="Grace"/>
/// after the kill (its reader stopped reading, and its pipe is full) is given up, so the run can end; every later write
/// then fails at once, since the abandoned one may still put its bytes out. The bytes of each write are copied first
/// (into a pooled buffer, returned when the write ends), so an abandoned write never reads a buffer its caller has reused.
/// </summary>
/// <param name="inner">The stream written to.</param>
/// <param name="kill">The runner's kill (a second Ctrl-C, SIGQUIT), or what else gives the writes up.</param>
/// <param name="killName">What <paramref name="kill"/> is, as the abandoned write's message names it.</param>
internal sealed class AbandonableOutput(Stream inner, CancellationToken kill, string killName = "the kill") : Stream
{
    /// <summary>How long a write may still take after the kill: a reader that reads at all gets its bytes.</summary>
    public static readonly TimeSpan Grace = TimeSpan.FromMilliseconds(500);

    private volatile bool _abandoned;

    public override bool CanRead => false;

    public override bool CanSeek => false;

    public override bool CanWrite => true;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    /// <exception cref="IOException">The write was abandoned at the kill, or an earlier one was.</exception>
    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        ThrowIfAbandoned();
        if (!kill.CanBeCanceled)
        {
            await inner.WriteAsync(buffer, cancellationToken).ConfigureAwait(false);
            return;
        }

        // A pooled copy: returned once the write has ended, never while an abandoned write may still read it.
        var copy = ArrayPool<byte>.Shared.Rent(buffer.Length);
        buffer.CopyTo(copy);
        var write = inner.WriteAsync(copy.AsMemory(0, buffer.Length), cancellationToken).AsTask();
        try
        {
            await write.WaitAsync(kill).ConfigureAwait(false);
            ArrayPool<byte>.Shared.Return(copy);
            return;
        }
        catch (OperationCanceledException) when (kill.IsCancellationRequested)
        {
        }

        try
        {
            await write.WaitAsync(Grace).ConfigureAwait(false);
            ArrayPool<byte>.Shared.Return(copy);
        }
        catch (TimeoutException)
        {
            _abandoned = true;
            _ = write.ContinueWith(t => t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
            ThrowIfAbandoned();
        }
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Write(byte[] buffer, int offset, int count)
    {
        ThrowIfAbandoned();
        inner.Write(buffer, offset, count);
    }

    public override Task FlushAsync(CancellationToken cancellationToken) => _abandoned ? Task.CompletedTask : inner.FlushAsync(cancellationToken);

    public override void Flush()
    {
        if (!_abandoned)
        {
            inner.Flush();
        }
    }

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    private void ThrowIfAbandoned()
    {
        if (_abandoned)
        {
            throw new IOException($"its reader did not take it within {Grace.TotalSeconds:0.#} s of {killName}, so it was abandoned");
        }
    }
}
