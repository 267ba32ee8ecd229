using System.Globalization;
using System.Text;
using System.Text.Json;

namespace ActorQueue.Cli.Jobs;

/// <summary>
/// Reads jobs lazily, one line at a time, so that a run over millions of lines holds only what the queue holds.
/// Whitespace-only lines and lines whose first non-blank character is <c>#</c> are skipped; others run as written. With JSONL, each line is an object
/// <c>{"id", "cmd", "tags", "timeout", "retries", "env"}</c>; only <c>cmd</c> is required. A line that is not a valid
/// job (bad JSON or value, a NUL, bytes that are not UTF-8) becomes a <see cref="MalformedJob"/>, never a changed command.
/// </summary>
internal static class JobReader
{
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>ASCII white space, told from the bytes, before a line is decoded.</summary>
    private static readonly byte[] AsciiBlanks = " \t\v\f\r"u8.ToArray();

    private static readonly IReadOnlyDictionary<string, string> EmptyEnvironment = new Dictionary<string, string>();

    /// <summary>The keys a JSONL job may have: any other (a typo like "timout") would otherwise be dropped silently.</summary>
    private static readonly string[] Keys = ["id", "cmd", "tags", "timeout", "retries", "env"];

    /// <summary>The jobs of <paramref name="input"/>: <see cref="Job"/>s and <see cref="MalformedJob"/>s, in order.</summary>
    public static async IAsyncEnumerable<object> ReadAsync(Stream input, bool jsonl,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var reader = new LineReader(input);
        long lineNumber = 0;
        long seq = 0;
        while (await reader.ReadLineAsync(cancellationToken).ConfigureAwait(false) is ({ } bytes, _))
        {
            lineNumber++;
            if (reader.TooLong)
            {
                seq++;
                yield return new MalformedJob(seq, lineNumber,
                    $"the line is longer than {LineReader.MaxLineText} ({reader.LastLength} bytes), more than a command line can carry; it was skipped");
                continue;
            }

            var (skipped, text) = Classify(bytes, lineNumber);
            if (skipped)
            {
                continue;
            }

            seq++;
            yield return text is null
                ? new MalformedJob(seq, lineNumber, "not valid UTF-8 (commands reach /bin/sh as UTF-8 text, so it would run altered)")
                : jsonl ? ParseJson(seq, lineNumber, text) : ParseText(seq, lineNumber, text);
        }
    }

    /// <summary>
    /// How many jobs the file <paramref name="path"/> holds, as <see cref="ReadAsync"/> would yield them (every line with
    /// <paramref name="everyLine"/>, as a lone <c>::::</c> source reads it), read in bounded memory; <c>null</c> if it
    /// cannot be read, or is no regular file: a device like <c>/dev/zero</c> never ends, and a pipe or FIFO read here
    /// would lose its jobs to the count.
    /// </summary>
    public static async Task<long?> CountAsync(string path, bool everyLine = false)
    {
        try
        {
            if (FileIdentity.IsRegularFile(path) != true)
            {
                return null;
            }

            await using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1, FileOptions.Asynchronous);
            var reader = new LineReader(file);
            long count = 0;
            long lineNumber = 0;
            while (await reader.ReadLineAsync().ConfigureAwait(false) is ({ } line, _))
            {
                lineNumber++;
                if (everyLine || reader.TooLong || !Classify(line, lineNumber).Skipped)
                {
                    count++;
                }
            }

            return count;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>
    /// Whether line <paramref name="lineNumber"/> is skipped (blank, or a comment: its first non-blank character is
    /// <c>#</c>), and otherwise its text, <c>null</c> when it is not valid UTF-8. The first line's byte order mark is no
    /// part of it. Blank and comment lines are told from their bytes first, so a comment in another encoding (a Latin-1
    /// "# café") is skipped as any comment, not failed; only a line that would run has to be UTF-8. The job count
    /// (<see cref="CountAsync"/>) skips by this too, so --halt N% and the ETA count the jobs that run.
    /// </summary>
    private static (bool Skipped, string? Text) Classify(byte[] bytes, long lineNumber)
    {
        var utf8 = lineNumber == 1 && bytes.AsSpan().StartsWith(Encoding.UTF8.Preamble) ? bytes[Encoding.UTF8.Preamble.Length..] : bytes;
        if (utf8.AsSpan().TrimStart(AsciiBlanks) is var start && (start.IsEmpty || start[0] == (byte)'#'))
        {
            return (true, null);
        }

        // Unicode blanks (a no-break space before a '#') skip as they always did.
        var text = Decode(utf8);
        return (text is not null && (string.IsNullOrWhiteSpace(text) || text.AsSpan().TrimStart().StartsWith('#')), text);
    }

    /// <summary>
    /// The line as text, exactly as written (a trailing <c>\ </c> or no-break space is part of the command, as with GNU
    /// parallel's default <c>--trim n</c>); <c>null</c> when it is not valid UTF-8.
    /// </summary>
    private static string? Decode(byte[] utf8)
    {
        try
        {
            return StrictUtf8.GetString(utf8);
        }
        catch (DecoderFallbackException)
        {
            return null;
        }
    }

    private static object ParseText(long seq, long lineNumber, string text) =>
        text.Contains('\0', StringComparison.Ordinal)
            ? new MalformedJob(seq, lineNumber, "the command contains a NUL character, which no command line can carry")
            : new Job(seq, seq.ToString(CultureInfo.InvariantCulture), text, [], null, null, EmptyEnvironment);

    private static object ParseJson(long seq, long lineNumber, string text)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(text);
        }
        catch (JsonException ex)
        {
            return new MalformedJob(seq, lineNumber, $"not valid JSON ({ex.Message.Split('.')[0]})");
        }

        using (document)
        {
            try
            {
                return ParseJob(seq, document.RootElement) is var (job, problem) && job is not null ? job : new MalformedJob(seq, lineNumber, problem!);
            }
            catch (InvalidOperationException)
            {
                // JSON's \uD800-style escapes can name half of a UTF-16 pair, which no text holds; reading it as a string throws.
                return new MalformedJob(seq, lineNumber, "a string holds a lone surrogate escape (like \\ud800), which is not text");
            }
        }
    }

    /// <summary>The job a JSON object describes, or what is wrong with it.</summary>
    private static (Job? Job, string? Problem) ParseJob(long seq, JsonElement root)
    {
        if (root.ValueKind != JsonValueKind.Object)
        {
            return (null, "expected a JSON object");
        }

        var keys = new HashSet<string>(StringComparer.Ordinal);
        foreach (var property in root.EnumerateObject())
        {
            if (!Keys.Contains(property.Name))
            {
                return (null, $"unknown key {JsonSerializer.Serialize(property.Name)} (a job has {string.Join(", ", Keys)})");
            }

            if (!keys.Add(property.Name))
            {
                return (null, $"\"{property.Name}\" is given twice");
            }
        }

        if (!root.TryGetProperty("cmd", out var cmdValue) || cmdValue.ValueKind != JsonValueKind.String || cmdValue.GetString() is not { } cmd
            || string.IsNullOrWhiteSpace(cmd))
        {
            return (null, "\"cmd\" must be a non-empty string");
        }

        if (cmd.Contains('\0', StringComparison.Ordinal))
        {
            return (null, "\"cmd\" contains a NUL character, which no command line can carry");
        }

        var id = seq.ToString(CultureInfo.InvariantCulture);
        if (root.TryGetProperty("id", out var idValue))
        {
            if (idValue.ValueKind is not (JsonValueKind.String or JsonValueKind.Number))
            {
                return (null, "\"id\" must be a string or a number");
            }

            id = idValue.ValueKind == JsonValueKind.String ? idValue.GetString()! : idValue.GetRawText();
            if (id.Any(char.IsControl))
            {
                return (null, "\"id\" must not contain control characters (it prefixes output lines and messages)");
            }
        }

        var tags = new List<string>();
        if (root.TryGetProperty("tags", out var tagsValue))
        {
            if (tagsValue.ValueKind != JsonValueKind.Array || tagsValue.EnumerateArray().Any(t => t.ValueKind != JsonValueKind.String))
            {
                return (null, "\"tags\" must be an array of strings");
            }

            tags.AddRange(tagsValue.EnumerateArray().Select(t => t.GetString()!));
            // --limit TAG=N could never name such a tag (it refuses a blank TAG and spaces around one), so no run could
            // give the job a slot: the job failed later as "unknown tag ' net'; add --limit  net=N", advice --limit refuses.
            if (tags.FirstOrDefault(string.IsNullOrWhiteSpace) is { } blank)
            {
                return (null, $"\"tags\" must be names, got a blank one {JsonSerializer.Serialize(blank)} (--limit TAG=N takes no blank TAG)");
            }

            if (tags.FirstOrDefault(t => t.Trim() != t) is { } padded)
            {
                return (null, $"\"tags\" are matched exactly and --limit TAG=N takes no spaces around TAG, got {JsonSerializer.Serialize(padded)}: write {JsonSerializer.Serialize(padded.Trim())}");
            }

            if (tags.FirstOrDefault(t => t.Contains('=', StringComparison.Ordinal)) is { } unnamable)
            {
                return (null, $"\"tags\" must be names without '=' (as --limit TAG=N gives them), got {JsonSerializer.Serialize(unnamable)}");
            }
        }

        TimeSpan? timeout = null;
        if (root.TryGetProperty("timeout", out var timeoutValue))
        {
            timeout = timeoutValue.ValueKind switch
            {
                JsonValueKind.Number => timeoutValue.TryGetDouble(out var seconds) ? Durations.FromSeconds(seconds) : null,
                JsonValueKind.String => Durations.Parse(timeoutValue.GetString()),
                _ => null,
            };
            if (timeout is null)
            {
                return (null, $"\"timeout\" must be a number of seconds or a duration like \"30s\", from {Durations.Range}, got {timeoutValue.GetRawText()}");
            }
        }

        int? retries = null;
        if (root.TryGetProperty("retries", out var retriesValue))
        {
            if (retriesValue.ValueKind != JsonValueKind.Number || !retriesValue.TryGetInt32(out var r) || r < 0)
            {
                return (null, "\"retries\" must be a whole number >= 0");
            }

            retries = r;
        }

        var environment = new Dictionary<string, string>(StringComparer.Ordinal);
        if (root.TryGetProperty("env", out var envValue))
        {
            if (envValue.ValueKind != JsonValueKind.Object)
            {
                return (null, "\"env\" must be an object of strings");
            }

            foreach (var variable in envValue.EnumerateObject())
            {
                if (variable.Name.Length == 0 || variable.Name.AsSpan().IndexOfAny('=', '\0') >= 0)
                {
                    return (null, $"\"env\" names must be non-empty, without '=' or NUL, got {JsonSerializer.Serialize(variable.Name)}");
                }

                var value = variable.Value.ValueKind switch
                {
                    JsonValueKind.String => variable.Value.GetString(),
                    JsonValueKind.Number => variable.Value.GetRawText(),
                    _ => null,
                };
                if (value is null || value.Contains('\0', StringComparison.Ordinal))
                {
                    return (null, $"\"env\" value of {variable.Name} must be a string (or number) without NUL");
                }

                if (!environment.TryAdd(variable.Name, value))
                {
                    return (null, $"\"env\" key {variable.Name} is given twice");
                }
            }
        }

        return (new Job(seq, id, cmd, tags, timeout, retries, environment), null);
    }
}

/// <summary>Durations on the command line: <c>500ms</c>, <c>30s</c>, <c>5m</c>, <c>1h</c>, or plain seconds.</summary>
internal static class Durations
{
    /// <summary>The shortest timeout: shorter ones round to nothing.</summary>
    public static readonly TimeSpan Min = TimeSpan.FromMilliseconds(1);

    /// <summary>The longest timeout a .NET timer can wait (about 49.7 days).</summary>
    public static readonly TimeSpan Max = TimeSpan.FromMilliseconds(uint.MaxValue - 1);

    /// <summary>
    /// The accepted range, as the error messages and --help state it: exactly <see cref="Min"/> to <see cref="Max"/>
    /// (it said 1193h, under the 4294967.294 s, about 1193.05 h, accepted).
    /// </summary>
    public const string Range = "1ms to 4294967.294s";

    /// <summary>The duration <paramref name="text"/> states, if it is one within <see cref="Min"/>..<see cref="Max"/>.</summary>
    public static TimeSpan? Parse(string? text) => Seconds(text) is { } seconds ? FromSeconds(seconds) : null;

    /// <summary>Whether <paramref name="text"/> states a duration of zero (<c>0</c>, <c>0ms</c>, <c>0.0s</c>...).</summary>
    public static bool IsZero(string? text) => Seconds(text) == 0;

    /// <summary>The seconds <paramref name="text"/> states, in any unit; <c>null</c> if it states none.</summary>
    private static double? Seconds(string? text)
    {
        if (string.IsNullOrWhiteSpace(text))
        {
            return null;
        }

        text = text.Trim();
        var (number, unit) = text.EndsWith("ms", StringComparison.Ordinal) ? (text[..^2], 0.001)
            : text.EndsWith('s') ? (text[..^1], 1.0)
            : text.EndsWith('m') ? (text[..^1], 60.0)
            : text.EndsWith('h') ? (text[..^1], 3600.0)
            : (text, 1.0);
        return double.TryParse(number, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) ? value * unit : null;
    }

    /// <summary><paramref name="seconds"/> as a duration, if within <see cref="Min"/>..<see cref="Max"/> (checked before any conversion can overflow).</summary>
    public static TimeSpan? FromSeconds(double seconds) =>
        seconds >= Min.TotalSeconds && seconds <= Max.TotalSeconds ? TimeSpan.FromSeconds(seconds) : null;
}
