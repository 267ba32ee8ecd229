using System.Text.Json;

namespace ActorQueue.Cli.Jobs;

/// <summary>
/// Reads jobs lazily, one line at a time, so that a run over millions of lines holds only what the queue holds.
/// Blank lines and lines starting with <c>#</c> are skipped. With JSONL, each line is an object
/// <c>{"id", "cmd", "tags", "timeout", "retries", "env"}</c>; only <c>cmd</c> is required.
/// </summary>
internal static class JobReader
{
    public static async IAsyncEnumerable<object> ReadAsync(TextReader input, bool jsonl,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        long lineNumber = 0;
        long seq = 0;
        while (await input.ReadLineAsync(cancellationToken) is { } line)
        {
            lineNumber++;
            var text = line.Trim();
            if (text.Length == 0 || text.StartsWith('#'))
            {
                continue;
            }

            seq++;
            yield return jsonl ? ParseJson(seq, lineNumber, text) : new Job(seq, seq.ToString(System.Globalization.CultureInfo.InvariantCulture), text, [], null, null, EmptyEnvironment);
        }
    }

    private static readonly IReadOnlyDictionary<string, string> EmptyEnvironment = new Dictionary<string, string>();

    private static object ParseJson(long seq, long lineNumber, string text)
    {
        try
        {
            using var document = JsonDocument.Parse(text);
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                return new MalformedJob(seq, lineNumber, "expected a JSON object");
            }

            if (!root.TryGetProperty("cmd", out var cmd) || cmd.ValueKind != JsonValueKind.String || string.IsNullOrWhiteSpace(cmd.GetString()))
            {
                return new MalformedJob(seq, lineNumber, "\"cmd\" must be a non-empty string");
            }

            var id = root.TryGetProperty("id", out var idValue) ? idValue.ToString() : seq.ToString(System.Globalization.CultureInfo.InvariantCulture);
            var tags = new List<string>();
            if (root.TryGetProperty("tags", out var tagsValue))
            {
                if (tagsValue.ValueKind != JsonValueKind.Array || tagsValue.EnumerateArray().Any(t => t.ValueKind != JsonValueKind.String))
                {
                    return new MalformedJob(seq, lineNumber, "\"tags\" must be an array of strings");
                }

                tags.AddRange(tagsValue.EnumerateArray().Select(t => t.GetString()!));
            }

            TimeSpan? timeout = null;
            if (root.TryGetProperty("timeout", out var timeoutValue))
            {
                var parsed = timeoutValue.ValueKind == JsonValueKind.Number
                    ? TimeSpan.FromSeconds(timeoutValue.GetDouble())
                    : Durations.Parse(timeoutValue.GetString());
                if (parsed is not { } valid || valid <= TimeSpan.Zero)
                {
                    return new MalformedJob(seq, lineNumber, "\"timeout\" must be a positive number of seconds or a duration like \"30s\"");
                }

                timeout = valid;
            }

            int? retries = null;
            if (root.TryGetProperty("retries", out var retriesValue))
            {
                if (retriesValue.ValueKind != JsonValueKind.Number || !retriesValue.TryGetInt32(out var r) || r < 0)
                {
                    return new MalformedJob(seq, lineNumber, "\"retries\" must be a whole number >= 0");
                }

                retries = r;
            }

            var environment = new Dictionary<string, string>();
            if (root.TryGetProperty("env", out var envValue))
            {
                if (envValue.ValueKind != JsonValueKind.Object)
                {
                    return new MalformedJob(seq, lineNumber, "\"env\" must be an object of strings");
                }

                foreach (var variable in envValue.EnumerateObject())
                {
                    environment[variable.Name] = variable.Value.ToString();
                }
            }

            return new Job(seq, id, cmd.GetString()!, tags, timeout, retries, environment);
        }
        catch (JsonException ex)
        {
            return new MalformedJob(seq, lineNumber, $"not valid JSON ({ex.Message.Split('.')[0]})");
        }
    }
}

/// <summary>Durations on the command line: <c>500ms</c>, <c>30s</c>, <c>5m</c>, <c>1h</c>, or plain seconds.</summary>
internal static class Durations
{
    public static TimeSpan? Parse(string? text)
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
        return double.TryParse(number, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var value)
               && value > 0 && double.IsFinite(value)
            ? TimeSpan.FromSeconds(value * unit)
            : null;
    }
}
