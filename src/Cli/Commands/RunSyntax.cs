using System.CommandLine;
using System.CommandLine.Parsing;
using ActorQueue.Cli.Jobs;
using ActorQueue.Cli.Security;
using static ActorQueue.Cli.Commands.CommandLineSyntax;

namespace ActorQueue.Cli.Commands;

/// <summary><c>actorqueue run</c>'s options and arguments, and their binding into a checked <see cref="RunOptions"/>.</summary>
internal sealed class RunSyntax
{
    private readonly Argument<string[]> _arguments = new("FILE|COMMAND")
    {
        Description = "without ::: or ::::, the job file (one shell command per line; - or none for stdin); with them, the command, with replacement strings {} {.} {/} {//} {/.} {#} {%} and {N}",
        Arity = ArgumentArity.ZeroOrMore,
    };

    private readonly Option<int> _jobs = JobCount.Option("run at most N jobs at once (default: the processor count; above 4096, 4096 with a warning); as in GNU parallel, 0 runs as many as can run (4096), N% a share of the processor count, +N or -N more or fewer than it");
    private readonly Option<int> _maxQueued = WholeNumber("--max-queued", "", 1, "read at most N jobs ahead of the running ones (default: 2 x jobs, at least 16); input is read lazily, so a huge input runs in bounded memory", null);
    private readonly Option<string[]> _limit = new("--limit")
    {
        Description = "a named limiter: jobs tagged TAG also need one of its N slots (repeatable; TAG is matched exactly: not blank, no spaces around it)",
        HelpName = "TAG=N",
        Arity = ArgumentArity.OneOrMore,
        AllowMultipleArgumentsPerToken = false,
    };

    private readonly Option<string[]> _argFiles = new("--arg-file", "-a")
    {
        Description = "read arguments from FILE, one a line, as :::: FILE, before any ::: or :::: source (repeatable; - for stdin)",
        HelpName = "FILE",
        Arity = ArgumentArity.OneOrMore,
        AllowMultipleArgumentsPerToken = false,
    };

    private readonly Option<int> _retries = WholeNumber("--retries", "", 0, "retry a failed job up to N times, with backoff from 100 ms doubling to 5 s", 0);
    private readonly Option<string> _timeout = Text("--timeout", "DURATION", $"kill a job's whole process group after DURATION (500ms, 30s, 2m, 1h; {Durations.Range}, about 49.7 days)");
    private readonly Option<bool> _haltOnFailure = Flag("--halt-on-failure", "after the first failure start no new jobs; running jobs finish (the exit status still counts failed jobs)");
    private readonly Option<string> _halt = Text("--halt", "WHEN,WHAT=N[%]", "GNU parallel's --halt: WHEN is soon (running jobs finish) or now (they are killed); WHAT is fail, success or done; N jobs or N% of all; also never, 0, 1, 2, -1, -2 and N%");
    private readonly Option<string> _delay = Text("--delay", "DURATION", "start jobs at least DURATION apart, in input order (2.5 = seconds, or 500ms, 1s, 2m; 0: no delay); a retry starts next once its backoff is over, and a job waiting for a --limit slot lets later jobs start meanwhile");
    private readonly Option<bool> _keepOrder = Flag("--keep-order", "print jobs' output in input order, not in the order they finish", "-k");
    private readonly Option<string> _results = PathText("--results", "DIR", "save each job's stdout, stderr and seq under DIR/1/ARG1/2/ARG2/... (GNU parallel's layout) instead of printing its output");
    private readonly Option<bool> _tag = Flag("--tag", "prefix every output line with the job's arguments (from ::: and ::::, joined by spaces, as GNU parallel) or else its id, and a tab");
    private readonly Option<bool> _quiet = Flag("--quiet", "no progress and no summary", "-q");
    private readonly Option<bool> _eta = Flag("--eta", "show progress with the estimated time left (even with -q)");
    private readonly Option<bool> _jsonl = Flag("--jsonl", "input lines are JSON objects {\"id\", \"cmd\", \"tags\", \"timeout\", \"retries\", \"env\"}");
    private readonly Option<string> _jobLog = PathText("--joblog", "FILE", "record finished jobs in GNU parallel's joblog format");
    private readonly Option<bool> _resume = Flag("--resume", "skip the jobs FILE of --joblog records as finished, and append to it (a last record a crash cut short is dropped, so that job runs again; not with --state, which continues a run by itself)");
    private readonly Option<bool> _resumeFailed = Flag("--resume-failed", "like --resume, but also run again the jobs the joblog records as failed (not with --state: 'actorqueue dead-letters requeue' runs failed jobs again)");
    private readonly Option<string> _state = PathText("--state", "FILE", "keep the run's jobs in a durable queue in the SQLite FILE: a run stopped in any way (even by SIGKILL) and started again as the same command runs only the jobs that did not finish; failed jobs become dead letters (see 'actorqueue dead-letters'); not with --resume or --cluster");
    private readonly Option<string> _log = PathText("--log", "FILE", "write structured logs (Serilog compact JSON): one event per job, plus the queue's and limiters' own events; appended to FILE, which may also be a FIFO or /dev/stderr; at the end its reader gets at most 10 s in all (0.5 s a write once that write is given up on) to take what is left, and the rest is counted on stderr");
    private readonly Option<bool> _cluster = Flag("--cluster", "distribute jobs to worker nodes instead of running them here; -j bounds the jobs in flight across the cluster");
    private readonly Option<string> _listen = Text("--listen", "HOST:PORT", "where the coordinator listens for worker nodes; HOST is an IP address or a name whose last IPv4 address (the one bound) is this machine's (loopback unless --allow-remote), and not 0.0.0.0 or [::]: nodes join the coordinator at this very address");
    private readonly Option<int> _minNodes = WholeNumber("--min-nodes", "", 1, "wait for N worker nodes before the first job starts", 1);
    private readonly Option<bool> _allowRemote = Flag("--allow-remote", "allow a non-loopback --listen (nodes on other machines)");
    private readonly CertificateOptions _certificates = new();

    public RunSyntax()
    {
        Command = new Command("run", "run one shell command per input line (or JSONL jobs), or a command over ::: / :::: arguments, in parallel")
        {
            _arguments, _jobs, _maxQueued, _limit, _argFiles, _retries, _timeout, _haltOnFailure, _halt, _delay, _keepOrder, _results, _tag, _quiet,
            _eta, _jsonl, _jobLog, _resume, _resumeFailed, _state, _log, _cluster, _listen, _minNodes, _allowRemote,
        };
        _certificates.AddTo(Command);
    }

    /// <summary>The <c>run</c> command.</summary>
    public Command Command { get; }

    /// <summary>The options as <paramref name="result"/> holds them, checked; or the problem to report as a usage error.</summary>
    public (RunOptions? Options, string? Problem) Bind(ParseResult result, InputSources? sources)
    {
        try
        {
            return (Check(result, sources), null);
        }
        catch (UsageException ex)
        {
            return (null, ex.Message);
        }
    }

    private RunOptions Check(ParseResult result, InputSources? sources)
    {
        var words = Words(result);
        if (words.Where(w => w.Option).Select(w => w.Value).FirstOrDefault() is { } unknown)
        {
            throw new UsageException($"unknown option '{unknown}'");
        }

        var options = new RunOptions
        {
            Jobs = result.GetValue(_jobs),
            JobsOption = result.GetResult(_jobs)?.IdentifierToken?.Value ?? "-j",
            MaxQueued = result.GetResult(_maxQueued) is null ? null : result.GetValue(_maxQueued),
            Limits = Limits(result.GetValue(_limit) ?? []),
            Retries = result.GetValue(_retries),
            Timeout = result.GetValue(_timeout) is { } timeout
                ? Durations.Parse(timeout) ?? throw new UsageException($"--timeout takes a duration from {Durations.Range} (like 30s, 500ms or 2m), got '{timeout}'")
                : null,
            HaltOnFailure = result.GetValue(_haltOnFailure),
            Halt = result.GetValue(_halt) is { } halt ? HaltPolicy.Parse(halt) is var (policy, problem) && problem is null ? policy : throw new UsageException(problem!) : null,
            // As in GNU parallel, a delay of 0 means none.
            Delay = result.GetValue(_delay) is { } delay && !Durations.IsZero(delay)
                ? Durations.Parse(delay) ?? throw new UsageException($"--delay takes 0 (no delay) or a duration from {Durations.Range} (like 2.5, 500ms or 1s), got '{delay}'")
                : null,
            KeepOrder = result.GetValue(_keepOrder),
            Results = result.GetValue(_results),
            Tag = result.GetValue(_tag),
            Quiet = result.GetValue(_quiet),
            Eta = result.GetValue(_eta),
            Jsonl = result.GetValue(_jsonl),
            JobLog = result.GetValue(_jobLog),
            Resume = result.GetValue(_resume) || result.GetValue(_resumeFailed),
            ResumeFailed = result.GetValue(_resumeFailed),
            LogFile = result.GetValue(_log),
            State = result.GetValue(_state),
            Cluster = result.GetValue(_cluster),
            Listen = result.GetValue(_listen) is { } listen ? CheckedListen(listen) : null,
            MinNodes = result.GetValue(_minNodes),
            AllowRemote = result.GetValue(_allowRemote),
            Certificates = _certificates.Bind(result),
        };

        if (result.GetValue(_argFiles) is { Length: > 0 } argFiles)
        {
            sources = InputSources.WithArgFiles(argFiles, sources, result.GetResult(_argFiles)?.IdentifierToken?.Value ?? "-a");
            if (sources.Problem is { } sourceProblem)
            {
                throw new UsageException(sourceProblem);
            }
        }

        if (sources is null)
        {
            if (words.Count > 1)
            {
                throw new UsageException($"only one input file may be given, got '{words[0].Value}' and '{words[1].Value}' (a command needs ::: or :::: arguments)");
            }

            if (words is [{ Value: "" }])
            {
                throw new UsageException("the job FILE needs a path (or - for stdin), got ''");
            }

            options = options with { Input = words.Count == 1 ? words[0].Value : "-" };
        }
        else
        {
            if (options.Jsonl)
            {
                throw new UsageException("--jsonl reads jobs from a file; it does not apply to ::: or :::: arguments");
            }

            var (template, templateProblem) = CommandTemplate.Parse(string.Join(' ', words.Select(w => w.Value)));
            options = options with { Sources = sources, Template = template ?? throw new UsageException(templateProblem!) };
        }

        if (options.JobLog is "-" || options.LogFile is "-")
        {
            // GNU parallel's --joblog - writes to stdout, among the jobs' output; a file named '-' would surprise everyone.
            throw new UsageException($"{(options.JobLog is "-" ? "--joblog" : "--log")} '-': writing it to standard output is not supported; give a FILE (or /dev/stderr, unless standard error is a file)");
        }

        if (options.Resume && options.JobLog is null)
        {
            throw new UsageException($"{(options.ResumeFailed ? "--resume-failed" : "--resume")} needs --joblog FILE to know which jobs already finished");
        }

        if (options.State is not null && (options.Resume || options.Cluster))
        {
            throw new UsageException(options.Cluster
                ? "--state keeps a local run's jobs; it does not apply to --cluster"
                : $"--state and {(options.ResumeFailed ? "--resume-failed" : "--resume")} are two ways to continue a run: give one (with --state, 'actorqueue dead-letters requeue' runs failed jobs again)");
        }

        if (options.HaltOnFailure && options.Halt is not null)
        {
            throw new UsageException("--halt-on-failure and --halt are two ways to say one thing: give one");
        }

        if (options.Cluster != (options.Listen is not null))
        {
            throw new UsageException(options.Cluster ? "--cluster needs --listen HOST:PORT for worker nodes to join" : "--listen only applies with --cluster");
        }

        // Cluster-only options without --cluster would be ignored silently.
        if (!options.Cluster && result.GetResult(_minNodes) is { Implicit: false })
        {
            throw new UsageException($"--min-nodes {options.MinNodes} only applies with --cluster");
        }

        if (!options.Cluster && options.AllowRemote)
        {
            throw new UsageException("--allow-remote only applies with --cluster");
        }

        if (options.Certificates.Given && !options.Cluster)
        {
            throw new UsageException("--cert, --ca, --cert-dir and --insecure-loopback only apply with --cluster");
        }

        if (options.Cluster)
        {
            try
            {
                options = options with { ClusterNode = options.Certificates.NodeOptions(ClusterSession.Coordinator(options.Listen!, options.AllowRemote), "--cluster") };
            }
            catch (ArgumentException ex)
            {
                throw new UsageException(ClusterCertificateOptions.Problem(ex));
            }
        }

        return options;
    }

    /// <summary>
    /// The words given for the argument, and whether each looks like an option: System.CommandLine hands an unknown
    /// <c>--frobnicate</c> to the argument, which only a word after <c>--</c> may legitimately be.
    /// </summary>
    private List<(string Value, bool Option)> Words(ParseResult result)
    {
        var given = result.GetResult(_arguments)?.Tokens ?? [];
        var dashDash = result.Tokens.ToList().FindIndex(t => t.Type == TokenType.DoubleDash);
        return [.. given.Select(token =>
        {
            var afterDashDash = dashDash >= 0 && result.Tokens.ToList().FindIndex(t => ReferenceEquals(t, token)) > dashDash;
            return (token.Value, !afterDashDash && token.Value.StartsWith('-') && token.Value != "-");
        })];
    }

    private static Dictionary<string, int> Limits(IEnumerable<string> given)
    {
        var limits = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var limit in given)
        {
            if (limit.StartsWith("--", StringComparison.Ordinal))
            {
                throw new UsageException("--limit needs a value");
            }

            var eq = limit.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0)
            {
                throw new UsageException($"--limit takes TAG=N, got '{limit}'");
            }

            var tag = limit[..eq];
            if (string.IsNullOrWhiteSpace(tag))
            {
                throw new UsageException($"--limit '{limit}': TAG is blank; give a name, like net=2");
            }

            if (tag.Trim() != tag)
            {
                // Refused, not trimmed: tags are matched exactly (a JSONL line with such a tag fails as malformed).
                throw new UsageException($"--limit '{limit}': TAG '{tag}' has spaces around it, and tags are matched exactly: write '{tag.Trim()}={limit[(eq + 1)..]}'");
            }

            if (limits.TryGetValue(tag, out var earlier))
            {
                throw new UsageException($"--limit {tag} is given twice ('{tag}={earlier}' and '{limit}')");
            }

            var text = limit[(eq + 1)..];
            limits[tag] = int.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var value) && value >= 1
                ? value
                : throw new UsageException($"--limit {tag} takes a whole number >= 1, got '{text}'");
        }

        return limits;
    }

    private static string CheckedListen(string listen)
    {
        try
        {
            ClusterSession.HostPort(listen, "--listen");
            return listen;
        }
        catch (ArgumentException ex)
        {
            throw new UsageException(ClusterCertificateOptions.Problem(ex));
        }
    }

    private sealed class UsageException(string message) : Exception(message);
}
