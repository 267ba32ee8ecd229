namespace ActorQueue.Cli.Jobs;

/// <summary>
/// Reads a stream line by line as raw bytes, so that a caller can reject what is not valid UTF-8 instead of running a
/// silently altered command, and can tell a whole line from a last line a crash cut short.
/// </summary>
/// <param name="stream">The stream to read.</param>
/// <param name="skipLongLines">
/// Whether a line over <see cref="MaxLineBytes"/> is read on to its newline (job input: the next line is a job too);
/// when <c>false</c> (a joblog, which no such line belongs to) reading stops there, so endless input ends at once.
/// </param>
internal sealed class LineReader(Stream stream, bool skipLongLines = true)
{
    /// <summary>
    /// The longest line kept: 1 MiB. Linux caps one argument (the <c>sh -c</c> command) at 128 KiB and all arguments and
    /// environment at about 2 MiB, so a longer line can never run; a longer line is skipped in bounded memory.
    /// </summary>
    public const int MaxLineBytes = 1 << 20;

    /// <summary>How <see cref="MaxLineBytes"/> reads in messages.</summary>
    public const string MaxLineText = "1 MiB";

    private readonly byte[] _buffer = new byte[64 * 1024];
    private int _start;
    private int _end;
    private bool _atEnd;

    /// <summary>How many bytes the lines returned so far took, terminators included.</summary>
    public long Position { get; private set; }

    /// <summary>
    /// Whether the line last returned was longer than <see cref="MaxLineBytes"/>: then it was skipped (only its start is
    /// returned) and <see cref="LastLength"/> says how long it was.
    /// </summary>
    public bool TooLong => LastLength > MaxLineBytes;

    /// <summary>The length in bytes of the line last returned, terminator excluded.</summary>
    public long LastLength { get; private set; }

    /// <summary>
    /// The next line without its <c>\n</c> (nor a <c>\r</c> before it), and whether it had one; <c>null</c> at the end.
    /// </summary>
    /// <param name="cancellationToken">Abandons a read that waits for input (the stream is not read again after that).</param>
    public async Task<(byte[] Line, bool Terminated)?> ReadLineAsync(CancellationToken cancellationToken = default)
    {
        List<byte>? longLine = null;
        LastLength = 0;
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
                // A line longer than the buffer: keep what we have aside (up to the cap) and read on.
                longLine ??= [];
                if (longLine.Count <= MaxLineBytes)
                {
                    longLine.AddRange(_buffer);
                }

                Position += _buffer.Length;
                LastLength += _buffer.Length;
                _start = _end = 0;
                if (!skipLongLines && TooLong)
                {
                    return ([.. longLine.Take(MaxLineBytes)], false);
                }
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
        LastLength += length;
        var piece = _buffer.AsSpan(_start, length);
        _start += length;
        if (longLine is null)
        {
            return piece.ToArray();
        }

        if (LastLength > MaxLineBytes)
        {
            return [.. longLine.Take(MaxLineBytes)];
        }

        longLine.AddRange(piece);
        return [.. longLine];
    }

    private static byte[] TrimCarriageReturn(byte[] line) => line is [.., (byte)'\r'] ? line[..^1] : line;
}
