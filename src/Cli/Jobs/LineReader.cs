namespace ActorQueue.Cli.Jobs;

/// <summary>
/// Reads a stream line by line as raw bytes, so that a caller can reject what is not valid UTF-8 instead of running a
/// silently altered command, and can tell a whole line from a last line a crash cut short.
/// </summary>
internal sealed class LineReader(Stream stream)
{
    private readonly byte[] _buffer = new byte[64 * 1024];
    private int _start;
    private int _end;
    private bool _atEnd;

    /// <summary>How many bytes the lines returned so far took, terminators included.</summary>
    public long Position { get; private set; }

    /// <summary>
    /// The next line without its <c>\n</c> (nor a <c>\r</c> before it), and whether it had one; <c>null</c> at the end.
    /// </summary>
    /// <param name="cancellationToken">Abandons a read that waits for input (the stream is not read again after that).</param>
    public async Task<(byte[] Line, bool Terminated)?> ReadLineAsync(CancellationToken cancellationToken = default)
    {
        List<byte>? longLine = null;
        while (true)
        {
            var newline = Array.IndexOf(_buffer, (byte)'\n', _start, _end - _start);
            if (newline >= 0)
            {
                var line = Take(newline - _start, longLine);
                _start = newline + 1;
                Position += 1;
                return (TrimCarriageReturn(line), true);
            }

            if (_atEnd)
            {
                return _end > _start || longLine is not null ? (Take(_end - _start, longLine), false) : null;
            }

            if (_start == 0 && _end == _buffer.Length)
            {
                // A line longer than the buffer: keep what we have aside and read on.
                (longLine ??= []).AddRange(_buffer);
                Position += _buffer.Length;
                _start = _end = 0;
            }
            else if (_start > 0)
            {
                Array.Copy(_buffer, _start, _buffer, 0, _end - _start);
                _end -= _start;
                _start = 0;
            }

            var read = await stream.ReadAsync(_buffer.AsMemory(_end), cancellationToken).AsTask().WaitAsync(cancellationToken).ConfigureAwait(false);
            _atEnd = read == 0;
            _end += read;
        }
    }

    private byte[] Take(int length, List<byte>? longLine)
    {
        Position += length;
        var piece = _buffer.AsSpan(_start, length);
        _start += length;
        if (longLine is null)
        {
            return piece.ToArray();
        }

        longLine.AddRange(piece);
        return [.. longLine];
    }

    private static byte[] TrimCarriageReturn(byte[] line) => line is [.., (byte)'\r'] ? line[..^1] : line;
}
