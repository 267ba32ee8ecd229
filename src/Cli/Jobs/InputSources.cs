namespace ActorQueue.Cli.Jobs;

/// <summary>
/// GNU parallel's input sources: <c>::: a b</c> (arguments), <c>:::: FILE...</c> (each file, or <c>-</c> for stdin, one
/// argument per line), and <c>:::+</c> / <c>::::+</c>, which link a source to the one before it (zipped, to the shorter).
/// Several sources give their cartesian product, the last varying fastest, as parallel does. Everything after the first
/// separator is data, so it is split off before option parsing: <c>run echo ::: --help -j</c> echoes "--help" and "-j".
/// </summary>
internal sealed class InputSources
{
    private static readonly string[] Separators = [":::", "::::", ":::+", "::::+"];

    private InputSources(IReadOnlyList<InputSource> sources, string? problem)
    {
        Sources = sources;
        Problem = problem;
    }

    /// <summary>The sources in command-line order.</summary>
    public IReadOnlyList<InputSource> Sources { get; }

    /// <summary>What is wrong with the sources as written (a <c>::::</c> without a file), or <c>null</c>.</summary>
    public string? Problem { get; }

    /// <summary>The sources grouped for the product: a source and the ones linked to it with <c>+</c> form one group.</summary>
    public IReadOnlyList<IReadOnlyList<InputSource>> Groups
    {
        get
        {
            var groups = new List<List<InputSource>>();
            foreach (var source in Sources)
            {
                if (source.Linked && groups.Count > 0)
                {
                    groups[^1].Add(source);
                }
                else
                {
                    groups.Add([source]);
                }
            }

            return groups;
        }
    }

    /// <summary>
    /// Splits <c>run</c>'s arguments at the first input-source separator: the options and command before it, and the
    /// sources after it (<c>null</c> when there is no separator, so the input is a job file or stdin).
    /// </summary>
    public static (string[] Options, InputSources? Sources) Split(string[] args)
    {
        var first = Array.FindIndex(args, arg => Separators.Contains(arg));
        if (first < 0)
        {
            return (args, null);
        }

        var sources = new List<InputSource>();
        string? problem = null;
        var i = first;
        while (i < args.Length)
        {
            var separator = args[i++];
            var values = new List<string>();
            while (i < args.Length && !Separators.Contains(args[i]))
            {
                values.Add(args[i++]);
            }

            var linked = separator.EndsWith('+');
            if (separator.StartsWith("::::", StringComparison.Ordinal))
            {
                if (values.Count == 0)
                {
                    problem ??= $"{separator} needs a file (or - for stdin) to read arguments from";
                }
                else if (values.Contains(""))
                {
                    problem ??= $"{separator} needs a file (or - for stdin) to read arguments from, got ''";
                }

                // Each file is a source of its own; a + links only the first of them.
                sources.AddRange(values.Select((file, n) => new InputSource([], file, linked && n == 0)));
            }
            else
            {
                sources.Add(new InputSource(values, null, linked));
            }
        }

        return (args[..first], new InputSources(sources, problem ?? StdinTwice(sources)));
    }

    /// <summary>
    /// <c>-a FILE</c> (<c>--arg-file</c>): each file a source of its own, as <c>:::: FILE</c>, before the sources of the
    /// command line (<paramref name="rest"/>, or <c>null</c>), as GNU parallel puts them.
    /// </summary>
    public static InputSources WithArgFiles(IReadOnlyList<string> files, InputSources? rest, string option = "-a")
    {
        List<InputSource> sources = [.. files.Select(file => new InputSource([], file, false, option)), .. rest?.Sources ?? []];
        var problem = files.Contains("") ? $"{option} needs a file (or - for stdin) to read arguments from, got ''" : null;
        return new InputSources(sources, problem ?? rest?.Problem ?? StdinTwice(sources));
    }

    private static string? StdinTwice(List<InputSource> sources) =>
        sources.Count(s => s.File == "-") > 1 ? ":::: - is given twice: stdin can be read only once" : null;
}

/// <summary>One input source: the arguments of <c>:::</c>, or the file of <c>::::</c> (<c>-</c> for stdin).</summary>
/// <param name="Values">The arguments given on the command line (empty for a file).</param>
/// <param name="File">The file to read one argument per line from, or <c>null</c>.</param>
/// <param name="Linked">Linked to the source before it (<c>:::+</c>, <c>::::+</c>).</param>
/// <param name="Option">How the source was given, for messages: <c>::::</c>, or <c>-a</c> / <c>--arg-file</c>.</param>
internal sealed record InputSource(IReadOnlyList<string> Values, string? File, bool Linked, string Option = "::::");
