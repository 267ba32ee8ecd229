using System.Buffers;
using System.Diagnostics;

namespace ActorQueue.Cli.Jobs;

/// <summary>
/// The bytes a job wrote to one of its streams, kept exactly: in memory up to <see cref="SpoolThreshold"/>, then in a
/// temporary file, so a job costs bounded memory whatever it prints. The file is unlinked as soon as it is created,
/// so nothing is left behind even when the runner is killed. One writer (the job's reader) fills it, then readers copy it.
/// </summary>
internal sealed class CapturedOutput : IDisposable
{
    /// <summary>How many bytes stay in memory; past this, the whole output moves to a temporary file.</summary>
    public const int SpoolThreshold = 64 * 1024;

    private const int ChunkSize = 16 * 1024;

    /// <summary>The bytes so far, while they fit under the threshold; <c>null</c> once spooled.</summary>
    private byte[]? _memory;

    /// <summary>The unlinked temporary file the bytes went to past the threshold.</summary>
    private FileStream? _spool;

    private CapturedOutput(byte[] initial, long length)
    {
        _memory = initial;
        Length = length;
    }

    /// <summary>An empty capture, to be filled by <see cref="ReadFromAsync"/>.</summary>
    public CapturedOutput() : this(new byte[1024], 0)
    {
    }

    /// <summary>A capture of bytes already in hand (a remote job's result).</summary>
    public static CapturedOutput Of(byte[] bytes) => new(bytes, bytes.Length);

    /// <summary>How many bytes the job wrote.</summary>
    public long Length { get; private set; }

    /// <summary>Whether the bytes went past <see cref="SpoolThreshold"/> into a temporary file.</summary>
    public bool Spooled => _spool is not null;

    /// <summary>Reads <paramref name="source"/> to its end (or until <paramref name="cancellationToken"/>; what arrived stays).</summary>
    public async Task ReadFromAsync(Stream source, CancellationToken cancellationToken)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(ChunkSize);
        try
        {
            int read;
            while ((read = await source.ReadAsync(buffer.AsMemory(0, ChunkSize), cancellationToken).ConfigureAwait(false)) > 0)
            {
                await AppendAsync(buffer.AsMemory(0, read)).ConfigureAwait(false);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private async Task AppendAsync(ReadOnlyMemory<byte> bytes)
    {
        if (_spool is null && Length + bytes.Length > SpoolThreshold)
        {
            _spool = CreateSpoolFile();
            await _spool.WriteAsync(_memory.AsMemory(0, (int)Length)).ConfigureAwait(false);
            _memory = null;
        }

        if (_spool is not null)
        {
            await _spool.WriteAsync(bytes).ConfigureAwait(false);
        }
        else
        {
            if (Length + bytes.Length > _memory!.Length)
            {
                Array.Resize(ref _memory, (int)Math.Min(SpoolThreshold, Math.Max(2L * _memory.Length, Length + bytes.Length)));
            }

            bytes.CopyTo(_memory.AsMemory((int)Length));
        }

        Length += bytes.Length;
        Debug.Assert(_spool is not null || Length <= SpoolThreshold, "in-memory output never exceeds the threshold");
    }

    /// <summary>Why output could not be spooled in the temporary directory (before a run starts); <c>null</c> when it can.</summary>
    public static string? CannotSpool()
    {
        try
        {
            CreateSpoolFile().Dispose();
            return null;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return ex.Message;
        }
    }

    private static FileStream CreateSpoolFile()
    {
        var path = Path.Combine(Path.GetTempPath(), $"actorqueue-{Environment.ProcessId}-{Guid.NewGuid():N}.out");
        var file = new FileStream(path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, bufferSize: 0, FileOptions.Asynchronous);
        File.Delete(path); // the open handle keeps the bytes; the name is gone, so no crash can leave the file behind
        return file;
    }

    /// <summary>The bytes, in chunks, from the first; the chunk is only valid until the next one is asked for.</summary>
    public async IAsyncEnumerable<ReadOnlyMemory<byte>> ChunksAsync()
    {
        if (_spool is null)
        {
            if (Length > 0)
            {
                yield return _memory.AsMemory(0, (int)Length);
            }

            yield break;
        }

        var buffer = ArrayPool<byte>.Shared.Rent(ChunkSize);
        try
        {
            for (long offset = 0; offset < Length;)
            {
                var read = await RandomAccess.ReadAsync(_spool.SafeFileHandle, buffer.AsMemory(0, ChunkSize), offset).ConfigureAwait(false);
                if (read == 0)
                {
                    throw new IOException($"the spooled output ended after {offset} of {Length} bytes");
                }

                offset += read;
                yield return buffer.AsMemory(0, read);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>The first <paramref name="max"/> bytes (all of them when fewer) in one array, for a remote job's result, which travels whole.</summary>
    public async Task<byte[]> ToArrayAsync(int max)
    {
        var bytes = new byte[Math.Clamp(Length, 0, Math.Max(max, 0))];
        var at = 0;
        await foreach (var chunk in ChunksAsync().ConfigureAwait(false))
        {
            if (at == bytes.Length)
            {
                break;
            }

            var part = chunk[..Math.Min(chunk.Length, bytes.Length - at)];
            part.CopyTo(bytes.AsMemory(at));
            at += part.Length;
        }

        return bytes;
    }

    /// <summary>Whether the last byte is a newline (or there is none).</summary>
    public async Task<bool> EndsWithNewlineAsync()
    {
        if (Length == 0)
        {
            return true;
        }

        if (_spool is null)
        {
            return _memory![Length - 1] == (byte)'\n';
        }

        var last = new byte[1];
        await RandomAccess.ReadAsync(_spool.SafeFileHandle, last, Length - 1).ConfigureAwait(false);
        return last[0] == (byte)'\n';
    }

    public void Dispose()
    {
        _spool?.Dispose();
        _memory = null;
    }
}
