using System.Globalization;
using System.Text;

namespace ActorQueue.Cli.Jobs;

/// <summary>
/// The jobs of a command template over input sources: one per combination of arguments, in parallel's order (the
/// last source varies fastest), numbered from 1. Sources are read before the first job starts, so an unreadable file
/// is a usage error; a lone <c>::::</c> source (a file or stdin) is read lazily instead, like a job file, and its bad
/// lines fail as jobs.
/// </summary>
internal sealed class ArgumentJobs
{
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private static readonly IReadOnlyDictionary<string, string> EmptyEnvironment = new Dictionary<string, string>();

    private readonly CommandTemplate _template;

    /// <summary>Each group's rows (one argument per source of the group), read in full; empty when streaming.</summary>
    private readonly List<List<string[]>> _groups;

    /// <summary>The one file source read lazily, or <c>null</c>.</summary>
    private readonly Stream? _stream;

    private ArgumentJobs(CommandTemplate template, List<List<string[]>> groups, Stream? stream)
    {
        _template = template;
        _groups = groups;
        _stream = stream;
    }

    /// <summary>How many jobs there are, when every source has been read; <c>null</c> for a lazily read one.</summary>
    public long? Count => _stream is null ? _groups.Aggregate(1L, (product, group) => product * group.Count) : null;

    /// <summary>Reads the sources (all but a lone file, which is opened); the problem to report instead when one cannot be read.</summary>
    public static async Task<(ArgumentJobs? Jobs, string? Problem)> OpenAsync(InputSources sources, CommandTemplate template, Func<Stream> stdin)
    {
        InputSource? reading = null;
        try
        {
            if (sources.Sources is [{ File: { } only } lone])
            {
                reading = lone;
                return (new ArgumentJobs(template, [], only == "-" ? stdin() : Open(only)), null);
            }

            var read = new List<List<List<string>>>();
            foreach (var group in sources.Groups)
            {
                var columns = new List<List<string>>();
                foreach (var source in group)
                {
                    reading = source;
                    columns.Add(source.File is { } file ? await ReadAllAsync(file == "-" ? stdin() : Open(file), file) : [.. source.Values]);
                }

                read.Add(columns);
            }

            // As GNU parallel: beside a source with arguments, an empty source gives one empty argument (rather than
            // an empty product that would drop every other source's arguments); when all are empty, nothing runs.
            if (read.Any(columns => columns.Any(c => c.Count > 0)))
            {
                foreach (var empty in read.SelectMany(columns => columns).Where(c => c.Count == 0))
                {
                    empty.Add("");
                }
            }

            var groups = read.Select(columns => Enumerable.Range(0, columns.Min(c => c.Count))
                .Select(row => columns.Select(c => c[row]).ToArray()).ToList()).ToList();
            return (new ArgumentJobs(template, groups, null), null);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return (null, $"{reading?.Option ?? "::::"} cannot read '{reading?.File}': {Commands.Usage.Reason(reading?.File, ex)}");
        }
        catch (InvalidDataException ex)
        {
            return (null, ex.Message);
        }
    }

    /// <summary>The jobs, <see cref="Job"/>s and (for a lazily read source's bad lines) <see cref="MalformedJob"/>s, in order.</summary>
    public async IAsyncEnumerable<object> ReadAsync([System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        long seq = 0;
        if (_stream is not null)
        {
            await using (_stream)
            {
                var reader = new LineReader(_stream);
                long lineNumber = 0;
                while (await reader.ReadLineAsync(cancellationToken).ConfigureAwait(false) is ({ } bytes, _))
                {
                    lineNumber++;
                    seq++;
                    yield return Problem(reader, bytes) is { } problem ? new MalformedJob(seq, lineNumber, problem) : JobOf(seq, [StrictUtf8.GetString(bytes)]);
                }
            }

            yield break;
        }

        if (_groups.Count == 0 || _groups.Any(g => g.Count == 0))
        {
            yield break;
        }

        // An odometer over the groups: the last one turns fastest.
        var position = new int[_groups.Count];
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            seq++;
            yield return JobOf(seq, [.. _groups.SelectMany((group, g) => group[position[g]])]);
            var turning = _groups.Count - 1;
            while (turning >= 0 && ++position[turning] == _groups[turning].Count)
            {
                position[turning--] = 0;
            }

            if (turning < 0)
            {
                yield break;
            }
        }
    }

    private Job JobOf(long seq, string[] arguments) =>
        new(seq, seq.ToString(CultureInfo.InvariantCulture), _template.Expand(arguments, seq, slot: 0), [], null, null, EmptyEnvironment)
        {
            Arguments = arguments,
            SlotTemplate = _template.UsesSlot ? _template : null,
        };

    private static FileStream Open(string path) => new(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.Asynchronous);

    /// <summary>Why a line cannot be an argument (too long, not UTF-8, a NUL), or <c>null</c>.</summary>
    private static string? Problem(LineReader reader, byte[] bytes)
    {
        if (reader.TooLong)
        {
            return $"the line is longer than {LineReader.MaxLineText} ({reader.LastLength} bytes), more than a command line can carry; it was skipped";
        }

        try
        {
            return StrictUtf8.GetString(bytes).Contains('\0', StringComparison.Ordinal) ? "the argument contains a NUL character, which no command line can carry" : null;
        }
        catch (DecoderFallbackException)
        {
            return "not valid UTF-8 (commands reach /bin/sh as UTF-8 text, so it would run altered)";
        }
    }

    /// <summary>Every line of a source file as an argument; a line that cannot be one makes the whole run a usage error.</summary>
    private static async Task<List<string>> ReadAllAsync(Stream stream, string name)
    {
        await using (stream)
        {
            var values = new List<string>();
            var reader = new LineReader(stream);
            while (await reader.ReadLineAsync().ConfigureAwait(false) is ({ } bytes, _))
            {
                if (Problem(reader, bytes) is { } problem)
                {
                    throw new InvalidDataException($":::: {name}: line {values.Count + 1}: {problem}");
                }

                values.Add(StrictUtf8.GetString(bytes));
            }

            return values;
        }
    }
}
