using System.Buffers;

namespace ActorQueue.Cli.Jobs;

/// <summary>
/// The runner's stdout or stderr, whose writes the runner's kill abandons: a write (with pieces: a piece of it) still
/// blocked <see cref="Grace"/> after the kill (its reader stopped reading, and its pipe is full) is given up, so the
/// run can end; every later write then fails at once, since the abandoned one may still put its bytes out. The bytes of each write are copied first
/// (into a pooled buffer, returned when the write ends), so an abandoned write never reads a buffer its caller has reused.
/// </summary>
/// <param name="inner">The stream written to.</param>
/// <param name="kill">The runner's kill (a second Ctrl-C, SIGQUIT), or what else gives the writes up.</param>
/// <param name="killName">What <paramref name="kill"/> is, as the abandoned write's message names it.</param>
/// <param name="piece">
/// The most one write hands <paramref name="inner"/> at once, so <see cref="Grace"/> runs per piece: <see cref="PipeBuffer"/>
/// for stderr, whose reader is given up at the stop already; by default a write goes whole.
/// </param>
internal sealed class AbandonableOutput(Stream inner, CancellationToken kill, string killName = "the kill", int piece = int.MaxValue) : Stream
{
    /// <summary>How long a write may still take after the kill: a reader that reads at all gets its bytes.</summary>
    public static readonly TimeSpan Grace = TimeSpan.FromMilliseconds(500);

    private volatile bool _abandoned;

    public override bool CanRead => false;

    public override bool CanSeek => false;

    public override bool CanWrite => true;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    /// <summary>
    /// A pipe's atomic write (PIPE_BUF), as the piece a write is cut into: a pipe takes it as soon as its reader has
    /// freed that much, so <see cref="Grace"/> counts the time the reader takes nothing, not the time a slow reader
    /// takes for a whole 64 KiB buffer (a reader that reads at all gets its bytes, however slowly). stdout's writes go
    /// whole, one write(2) each: a job whose output the kill gave up is counted failed and runs again, and cutting its
    /// writes too took about 1.5 times the CPU for a 900 MB output.
    /// </summary>
    public const int PipeBuffer = 4096;

    /// <summary>
    /// Best-effort output (stderr; a joblog on a pipe or terminal): given up at the run's <paramref name="stop"/>, once its
    /// reader has taken none of a <see cref="PipeBuffer"/> piece for <see cref="Grace"/>, so a reader that holds its pipe
    /// and reads nothing cannot hold a stopped run, while one that reads, however slowly, gets every byte.
    /// </summary>
    public static AbandonableOutput GivenUpAtStop(Stream inner, CancellationToken stop) => new(inner, stop, "the stop", PipeBuffer);

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
        for (var written = 0; written < buffer.Length;)
        {
            var length = Math.Min(piece, buffer.Length - written);
            await WritePieceAsync(copy.AsMemory(written, length), cancellationToken).ConfigureAwait(false);
            written += length;
        }

        ArrayPool<byte>.Shared.Return(copy);
    }

    /// <summary>Writes one piece; one still blocked <see cref="Grace"/> after the kill abandons this stream.</summary>
    private async Task WritePieceAsync(ReadOnlyMemory<byte> bytes, CancellationToken cancellationToken)
    {
        var write = inner.WriteAsync(bytes, cancellationToken).AsTask();
        try
        {
            await write.WaitAsync(kill).ConfigureAwait(false);
            return;
        }
        catch (OperationCanceledException) when (kill.IsCancellationRequested)
        {
        }

        try
        {
            await write.WaitAsync(Grace).ConfigureAwait(false);
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
