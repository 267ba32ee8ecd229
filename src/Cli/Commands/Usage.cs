namespace ActorQueue.Cli.Commands;

/// <summary>The command's help text and its usage-error exit.</summary>
internal static class Usage
{
    /// <summary>The exit status for a usage error.</summary>
    public const int UsageErrorExitCode = 255;

    /// <summary>
    /// The exit status of a run stopped by its own failure (its input, standard output, joblog, --results or --state
    /// could not be read or written), whatever failed: GNU parallel's "other error", the same number as a usage error.
    /// </summary>
    public const int RunFailedExitCode = 255;

    /// <summary>The exit status of a run or node that Ctrl-C, SIGTERM, SIGHUP or SIGQUIT stopped (128 + SIGINT, as a shell reports it).</summary>
    public const int InterruptedExitCode = 130;

    /// <summary>What the generated help cannot say, printed after it: behaviour, exit status, examples.</summary>
    public static string? Notes(System.CommandLine.Command command) => command switch
    {
        System.CommandLine.RootCommand => RunNotes + "\n" + StateNotes + "\n" + ClusterNotes + "\n" + Examples,
        { Name: "run" } => RunNotes + "\n" + StateNotes,
        { Name: "node" or "cert" or "ca" } => ClusterNotes,
        { Name: "dead-letters" } => StateNotes,
        _ => null,
    };

    private const string RunNotes = """
        Each job's stdout and stderr are printed whole when it ends, never interleaved, byte for byte (past 64 KiB a
        job's output waits in a temporary file, not in memory). Jobs run in sessions of their own (setsid), so a
        terminal's Ctrl-C reaches only actorqueue. Ctrl-C once, SIGTERM or SIGHUP: no new jobs start and running jobs
        finish (their records are complete: --resume with the joblog, or the same command with --state, continues where
        the run stopped); Ctrl-C again or Ctrl-\ (SIGQUIT): running jobs' process groups are killed (they are not
        recorded as finished, so --resume, or the same command with --state, runs them again). After the first stage a
        write to stderr (all of it: one writer writes fd 2 in order), or to a --joblog that is a
        pipe or a terminal, that its reader does not take is given up (a job whose record is given up counts as
        failed), so the run ends once its running jobs have (stdout's reader gets their output until the kill). A
        stdout whose reader is gone (| head -1) fails the first job whose output it cannot take and stops the run as
        any output failure does (exit 255). Before a stop, a stderr reader that falls behind holds the jobs' stderr,
        failure lines, progress and summary (they wait for it), never a thread that logs: log lines (Serilog's, Akka's,
        stray stdout writes) past 1 MiB waiting are dropped and counted in one line where they were ("N log line(s) of
        stderr dropped here"); the process's own lines are always kept.

        GNU parallel's syntax: 'actorqueue run [options] COMMAND ::: ARGS... [::: ARGS...] [:::: FILE...]' runs COMMAND
        once per argument (several sources: once per combination, the last varying fastest; :::+ and ::::+ link a source
        to the one before, zipped to the shorter; beside others, an empty source gives one empty argument). Replacement strings: {} the argument, {.} without extension, {/} basename, {//} directory,
        {/.} basename without extension, {#} the job's number, {%} its slot, {N} (and {N.} {N/} {N//} {N/.}) source N's
        argument; arguments are shell-quoted; a COMMAND without any gets ' {}' appended; no COMMAND runs the arguments.
        Everything after the first ::: or :::: is an argument, even words that look like options.

        Exit status: 0 when every job succeeded; 1-100 the number of failed jobs, 101 more than 100 (a bad input line and a
        job that could not start count as failed); with --halt, GNU
        parallel's (fail=1: the failing job's status; N%: the failed percentage); 130 when the run was interrupted
        (Ctrl-C, SIGTERM, SIGHUP or SIGQUIT), however many jobs failed: the summary says how many ran; 255 for usage
        errors and for a run stopped by its own failure, whatever failed (its input could not be read, its output,
        joblog, --results or --state could not be written, or its cluster was lost; a job whose output could not be
        written counts as failed in the summary).
        """;

    private const string StateNotes = """
        With --state FILE the jobs go through a durable queue in the SQLite FILE, keyed by {#} and command line: run the
        same command again after any stop (even SIGKILL) and only the jobs that did not finish run, the joblog going on
        where it stopped; a job running at a kill runs again. An input that no longer gives the recorded jobs is refused
        (exit 255) before any job starts. A job whose last attempt failed (after --retries) is a dead letter:
        'actorqueue dead-letters --state FILE' lists them ('list [SEQ...]' only those), 'requeue [SEQ...]' runs them in the
        next run, 'purge [SEQ...]' forgets them (for each, a SEQ that is no dead letter is a usage error, exit 255, and
        nothing changes).
        """;

    private const string ClusterNotes = """
        With --cluster, joblog, --resume, --retries and --limit work as usual (the joblog's Host column names the node
        that ran each job); --state does not apply (it keeps a local run's jobs). run --cluster and node need --cert-dir DIR (or --cert FILE --ca FILE, or
        --insecure-loopback, on loopback only: not with --allow-remote). Private keys are written mode 600: ca.key encrypted with $ACTORQUEUE_CA_PASSWORD and
        node.pfx with $ACTORQUEUE_CERT_PASSWORD when set (cert node reads ca.key with the first; run and node read
        node.pfx with the second), so nodes never need the CA's password. A member of the cluster can run any command on
        its worker nodes and read every job: see docs/SECURITY.md. A node serves until the coordinator leaves the
        cluster; Ctrl-C, SIGTERM or SIGHUP makes it leave (exit 130; one that has not joined yet has nothing to leave and exits
        at once), and its running jobs run again on another node (at-least-once). A node's stderr never holds it: after
        the stop, or once its coordinator has left, a write to it that its reader does not take (a log shipper that
        stopped reading) is given up, so the node still exits; a reader that reads, however slowly, gets every line. A --seed that is the node's own --listen
        address, once both are resolved, is a usage error; so is a --seed on another machine for a node that listens on
        loopback (no --listen, or a loopback one), which a coordinator there could never reach; so are a --listen on
        every address (0.0.0.0:P, [::]:P: peers reach a node at the address it listens as, so give one they reach),
        a --seed of one, and an IPv4-mapped IPv6 --listen or --seed ([::ffff:127.0.0.1]:P: give 127.0.0.1:P). A node
        whose --seed names the coordinator otherwise than its --listen (localhost for 127.0.0.1, a name for its IP
        address) has its joins dropped: once the seed has answered for 20 s without letting it join, it says so and exits 1.
        """;

    private const string Examples = """
        Examples:
          dotnet run --project src/Cli -- run examples/jobs.txt -j 4 --retries 1
          seq 1 100 | sed 's/^/echo /' | actorqueue run - -j 8 --joblog run.log
          actorqueue run -j 4 'gzip {}' ::: *.log
          actorqueue run -k --results out 'convert {} {.}.png' :::: images.txt
          actorqueue run examples/jobs.jsonl --jsonl -j 4 --limit net=1 --tag
          actorqueue run jobs.txt -j 4 --joblog run.log --resume
          actorqueue run jobs.txt -j 4 --retries 2 --state run.db; actorqueue dead-letters --state run.db
          actorqueue cert ca --out ca && actorqueue cert node --ca ca --name coord --out coord \
            && actorqueue cert node --ca ca --name worker1 --out worker1
          actorqueue run jobs.txt --cluster --listen 127.0.0.1:4053 --cert-dir coord -j 8 --joblog run.log
          actorqueue node --seed 127.0.0.1:4053 --cert-dir worker1 -j 4          # on each worker node
        Completions: register 'actorqueue' with dotnet-suggest (System.CommandLine's [suggest] directive).
        """;

    /// <summary>
    /// Why <paramref name="path"/> could not be opened, for a usage-error line: .NET reports a directory as "Access to the
    /// path '...' is denied", which sends the user to chmod (and is false for root), and a missing directory as "Could not
    /// find a part of the path '/the/full/path'" (<see cref="MissingDirectory"/> says which part); otherwise the exception's message.
    /// </summary>
    public static string Reason(string? path, Exception exception) => exception switch
    {
        UnauthorizedAccessException when !string.IsNullOrEmpty(path) && Directory.Exists(path) => "it is a directory",
        DirectoryNotFoundException when !string.IsNullOrEmpty(path) => MissingDirectory(path),
        _ => exception.Message,
    };

    /// <summary>
    /// Why <paramref name="path"/>'s directory cannot hold it, as the user wrote the path: "its directory 'D' does not
    /// exist", or "'F' is a file, not a directory" when a part of it is a file (which .NET reports as a missing part too).
    /// </summary>
    public static string MissingDirectory(string path)
    {
        var directory = Path.GetDirectoryName(path.TrimEnd('/'));
        for (var part = directory; !string.IsNullOrEmpty(part); part = Path.GetDirectoryName(part))
        {
            if (File.Exists(part))
            {
                return $"'{part}' is a file, not a directory";
            }
        }

        return $"its directory '{directory}' does not exist";
    }

    /// <summary>Writes <paramref name="problem"/> as the one usage-error line and returns the usage-error exit status.</summary>
    public static int Fail(TextWriter error, string problem)
    {
        error.WriteLine(Line(problem));
        return UsageErrorExitCode;
    }

    /// <summary>
    /// <see cref="Fail"/>, for a command whose stderr is queued (<see cref="QueuedStderr"/>): the line is written as the
    /// run's own output is, after what was queued before it, and awaited until its reader has taken it (or the stop gave
    /// it up). Queued as a line, it was written at the process's end, which gives up a write its reader takes none of for
    /// half a second: a usage error on a stderr pipe that was full (shared with another writer, read late) exited 255
    /// and said nothing.
    /// </summary>
    public static async Task<int> FailAsync(TextWriter error, string problem)
    {
        // Console.Error is the installed queue behind Console's synchronized wrapper.
        if ((error as QueuedStderr ?? (ReferenceEquals(error, Console.Error) ? QueuedStderr.Installed : null)) is not { } queued)
        {
            return Fail(error, problem);
        }

        queued.Interrupts?.Decided(); // a signal while the line is written stops its wait, and says nothing of jobs
        try
        {
            await queued.Output.WriteAsync(System.Text.Encoding.UTF8.GetBytes(Line(problem) + "\n")).ConfigureAwait(false);
        }
        catch (IOException)
        {
            // Its reader is gone, or the stop gave the write up: nobody is left to tell.
        }

        return UsageErrorExitCode;
    }

    /// <summary>The usage-error line for <paramref name="problem"/>, without its newline.</summary>
    private static string Line(string problem)
    {
        // A reason quoted from .NET ends its sentence ("Could not find file '...'."): the hint follows without ".;".
        if (problem.EndsWith('.') && !problem.EndsWith("..", StringComparison.Ordinal))
        {
            problem = problem[..^1];
        }

        return $"actorqueue: {problem}; see 'actorqueue --help'";
    }
}
