using ActorQueue.Cli.Jobs;
using ActorQueue.Cli.Security;
using ActorQueue.Cluster;

namespace ActorQueue.Cli.Commands;

/// <summary>The options of <c>actorqueue run</c>, parsed and validated; a bad option is a usage error with a one-line fix.</summary>
internal sealed record RunOptions
{
    public string Input { get; init; } = "-";

    public bool Jsonl { get; init; }

    public int Jobs { get; init; } = Environment.ProcessorCount;

    public int? MaxQueued { get; init; }

    public IReadOnlyDictionary<string, int> Limits { get; init; } = new Dictionary<string, int>();

    public int Retries { get; init; }

    public TimeSpan? Timeout { get; init; }

    public bool HaltOnFailure { get; init; }

    public bool Tag { get; init; }

    public bool Quiet { get; init; }

    public string? JobLog { get; init; }

    public bool Resume { get; init; }

    public string? LogFile { get; init; }

    /// <summary>Distribute jobs to worker nodes (<c>actorqueue node</c>) instead of running them here.</summary>
    public bool Cluster { get; init; }

    /// <summary>The coordinator's cluster address, <c>HOST:PORT</c>.</summary>
    public string? Listen { get; init; }

    /// <summary>How many worker nodes must have joined before jobs start.</summary>
    public int MinNodes { get; init; } = 1;

    /// <summary>Allow a non-loopback <see cref="Listen"/> address.</summary>
    public bool AllowRemote { get; init; }

    /// <summary>The coordinator's certificate options, as given.</summary>
    public ClusterCertificateOptions Certificates { get; init; } = new();

    /// <summary>The coordinator's node, with its certificate and CAs read and checked (<see cref="Cluster"/> runs only).</summary>
    public ClusterNodeOptions? ClusterNode { get; init; }

    /// <summary>Parses the arguments after <c>run</c>; returns the options or the problem to report.</summary>
    public static (RunOptions? Options, string? Problem) Parse(IReadOnlyList<string> args)
    {
        var options = new RunOptions();
        var limits = new Dictionary<string, int>(StringComparer.Ordinal);
        var inputSeen = false;
        for (var i = 0; i < args.Count; i++)
        {
            var arg = args[i];
            // An option never takes another option as its value: "--joblog --resume" lacks the file name.
            string Value() => i + 1 < args.Count && !args[i + 1].StartsWith("--", StringComparison.Ordinal) ? args[++i] : throw new UsageException($"{arg} needs a value");
            try
            {
                switch (arg)
                {
                    case "-j" or "--jobs":
                        options = options with { Jobs = PositiveInt(arg, Value()) };
                        break;
                    case "--max-queued":
                        options = options with { MaxQueued = PositiveInt(arg, Value()) };
                        break;
                    case "--limit":
                        var limit = Value();
                        var eq = limit.IndexOf('=', StringComparison.Ordinal);
                        if (eq <= 0)
                        {
                            throw new UsageException($"--limit takes TAG=N, got '{limit}'");
                        }

                        var tag = limit[..eq];
                        if (limits.TryGetValue(tag, out var earlier))
                        {
                            throw new UsageException($"--limit {tag} is given twice ('{tag}={earlier}' and '{limit}')");
                        }

                        limits[tag] = PositiveInt($"--limit {tag}", limit[(eq + 1)..]);
                        break;
                    case "--retries":
                        options = options with { Retries = NonNegativeInt(arg, Value()) };
                        break;
                    case "--timeout":
                        var timeout = Value();
                        options = options with { Timeout = Durations.Parse(timeout) ?? throw new UsageException($"--timeout takes a duration from {Durations.Range} (like 30s, 500ms or 2m), got '{timeout}'") };
                        break;
                    case "--halt-on-failure":
                        options = options with { HaltOnFailure = true };
                        break;
                    case "--tag":
                        options = options with { Tag = true };
                        break;
                    case "--quiet" or "-q":
                        options = options with { Quiet = true };
                        break;
                    case "--jsonl":
                        options = options with { Jsonl = true };
                        break;
                    case "--joblog":
                        options = options with { JobLog = Value() };
                        break;
                    case "--resume":
                        options = options with { Resume = true };
                        break;
                    case "--log":
                        options = options with { LogFile = Value() };
                        break;
                    case "--cluster":
                        options = options with { Cluster = true };
                        break;
                    case "--listen":
                        var listen = Value();
                        try
                        {
                            ActorQueue.Cluster.ClusterNodeOptions.ParseHostPort(listen, "--listen");
                        }
                        catch (ArgumentException ex)
                        {
                            throw new UsageException(ClusterCertificateOptions.Problem(ex));
                        }

                        options = options with { Listen = listen };
                        break;
                    case "--min-nodes":
                        options = options with { MinNodes = PositiveInt(arg, Value()) };
                        break;
                    case "--allow-remote":
                        options = options with { AllowRemote = true };
                        break;
                    case var option when ClusterCertificateOptions.Handles(option):
                        options = options with { Certificates = options.Certificates.With(option, ClusterCertificateOptions.TakesValue(option) ? Value() : "") };
                        break;
                    default:
                        if (arg.StartsWith('-') && arg != "-")
                        {
                            throw new UsageException($"unknown option '{arg}'");
                        }

                        if (inputSeen)
                        {
                            throw new UsageException($"only one input file may be given, got '{options.Input}' and '{arg}'");
                        }

                        inputSeen = true;
                        options = options with { Input = arg };
                        break;
                }
            }
            catch (UsageException ex)
            {
                return (null, ex.Message);
            }
        }

        if (options.Resume && options.JobLog is null)
        {
            return (null, "--resume needs --joblog FILE to know which jobs already finished");
        }

        if (options.Cluster != (options.Listen is not null))
        {
            return (null, options.Cluster ? "--cluster needs --listen HOST:PORT for worker nodes to join" : "--listen only applies with --cluster");
        }

        if (options.Certificates.Given && !options.Cluster)
        {
            return (null, "--cert, --ca, --cert-dir and --insecure-loopback only apply with --cluster");
        }

        if (options.Cluster)
        {
            try
            {
                options = options with { ClusterNode = options.Certificates.NodeOptions(ClusterSession.Coordinator(options.Listen!, options.AllowRemote), "--cluster") };
            }
            catch (ArgumentException ex)
            {
                return (null, ClusterCertificateOptions.Problem(ex));
            }
        }

        return (options with { Limits = limits }, null);
    }

    private static int PositiveInt(string option, string text) =>
        int.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var value) && value >= 1
            ? value
            : throw new UsageException($"{option} takes a whole number >= 1, got '{text}'");

    private static int NonNegativeInt(string option, string text) =>
        int.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var value)
            ? value
            : throw new UsageException($"{option} takes a whole number >= 0, got '{text}'");

    private sealed class UsageException(string message) : Exception(message);
}
