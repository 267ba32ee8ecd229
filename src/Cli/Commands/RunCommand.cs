using ActorQueue.Actors;
using ActorQueue.Cli.Jobs;
using ActorQueue.Cli.Security;
using Serilog;
using Serilog.Core;
using Serilog.Formatting.Compact;

namespace ActorQueue.Cli.Commands;

/// <summary>
/// <c>actorqueue run</c>: a parallel job runner on ActorQueue. Jobs are read lazily into a <see cref="BoundedQueue{T}"/>;
/// its workers take a slot in each named limiter a job is tagged with, then one of the <c>-j</c> slots, and run the
/// command. Output is printed whole when a job ends; the joblog records every finished job.
/// </summary>
internal static class RunCommand
{
    /// <summary>
    /// Runs the jobs with all this process's stderr queued (<see cref="QueuedStderr"/>: its own lines, the run's, the
    /// signals', <c>--log</c>'s reports and Serilog's, so Akka's), written by one pump: a line a thread wrote itself
    /// waited for a reader that read nothing (a full pipe) for ever, and with it every thread that waited for the
    /// console's lock, so SIGTERM never ended the run (a coordinator's; a plain run's whose <c>--log</c> lost events).
    /// </summary>
    public static Task<int> RunAsync(RunOptions options, Stream stdout, Interrupts interrupts) =>
        QueuedStderr.RunAsync(interrupts, queued => RunAsync(options, stdout, queued.Output, queued, interrupts));

    // stderr: the jobs' stderr and the run's reports (RunConsole), given up at the stop already by the queue's pump;
    // errors: the usage lines before the jobs, and a coordinator's own.
    private static async Task<int> RunAsync(RunOptions options, Stream stdout, Stream stderr, TextWriter errors, Interrupts interrupts)
    {
        var outputs = new RunOutputs();
        var exitCode = await RunAsync(options, stdout, stderr, errors, interrupts, outputs);
        outputs.RemoveUnused(); // the run holds none of its outputs open any more
        return exitCode;
    }

    private static async Task<int> RunAsync(RunOptions options, Stream stdout, Stream stderr, TextWriter errors, Interrupts interrupts, RunOutputs outputs)
    {
        interrupts.RerunsKilled = options.RerunsUnfinished;

        // The coordinator's --listen, resolved before any file is made: a host name's loopback rule is checked once it
        // resolves (ClusterSession.UnresolvedRules), and a name that does not resolve left a new joblog behind.
        if (options.ClusterNode is { } node && await ClusterSession.ListenProblemAsync(node) is { } listenProblem)
        {
            return await outputs.FailAsync(errors, listenProblem);
        }

        // Every file is checked before the first job starts: a run that cannot keep its records does not begin.
        var input = options.Input == "-" || options.Sources is not null ? null : options.Input;
        if (options.Sources?.Sources.Where(s => s.File is not null and not "-").Select(s => s.File!).FirstOrDefault(f => options.JobLog is { } log && SameFile(log, f)) is { } overwritten)
        {
            return await outputs.FailAsync(errors, $"--joblog must not be the input file '{overwritten}' (it would overwrite the arguments)");
        }

        var readsStdin = options.Sources is null ? input is null : options.Sources.Sources.Any(s => s.File == "-");
        if (readsStdin && FileIdentity.StandardInputClosed())
        {
            return await outputs.FailAsync(errors, "the jobs are to come from standard input (-), but it is closed: give a FILE or ::: arguments");
        }

        var stdinIsPipe = false;
        var inputFile = input is not null ? FileIdentity.Of(input) : readsStdin ? FileIdentity.OfStandardInput(out stdinIsPipe) : null;
        // Stdin a pipe: a joblog or log written to it (/dev/stdin, /dev/fd/0, /proc/self/fd/0) comes back as input.
        var stdinPipe = inputFile is not null && stdinIsPipe;
        var stdoutFile = FileIdentity.OfStandardOutput();
        var stderrFile = FileIdentity.OfStandardError();
        foreach (var (option, output) in new[] { ("--joblog", options.JobLog), ("--log", options.LogFile) })
        {
            if (stdinPipe && output is not null && IsFile(output, inputFile))
            {
                return await outputs.FailAsync(errors, $"{option} '{output}' is the job input (standard input); writing to it would make the input never end");
            }

            // As --joblog -: the records and the jobs' output would overwrite each other (a file) or mix (a pipe).
            if (output is not null && IsFile(output, stdoutFile))
            {
                return await outputs.FailAsync(errors, $"{option} '{output}' is standard output, where the jobs' output goes: writing it there is not supported; give a FILE of its own");
            }

            if (output is not null && IsFile(output, stderrFile))
            {
                return await outputs.FailAsync(errors, $"{option} '{output}' is the file on standard error, where the jobs' errors and this command's log go: writing it there too would overwrite them; give a FILE of its own");
            }
        }

        if (options.JobLog is { } joblogPath && IsFile(joblogPath, inputFile))
        {
            return await outputs.FailAsync(errors, input is null
                ? $"--joblog '{joblogPath}' must not be the input file, on standard input (it would overwrite the jobs)"
                : $"--joblog must not be the input file '{input}' (it would overwrite the jobs)");
        }

        if (options.LogFile is { } logPath && (IsFile(logPath, inputFile) || options.JobLog is { } other && SameFile(logPath, other)))
        {
            return await outputs.FailAsync(errors, $"--log must not be the input file or the joblog, got '{logPath}'");
        }

        // The total is counted by reading the input a second time, which only a regular file allows (a lone :::: source
        // is streamed too; other sources are read in full first, so their count is known).
        var streamed = options.Sources is null ? options.Input : options.Sources.Sources is [{ File: { } only }] ? only : null;
        // A file whose kind cannot be told (no stat layout known here) is refused too: it would not be counted, and a
        // percentage over an unknown total never halts (re-read of this check: it let such a file through, silently).
        if (options.Halt is { Percent: not null } && streamed is not null && (streamed == "-" || FileIdentity.IsRegularFile(streamed) != true))
        {
            return await outputs.FailAsync(errors, streamed == "-"
                ? "--halt with a percentage needs to know how many jobs there are: read them from a FILE or ::: arguments, not stdin"
                : $"--halt with a percentage needs to know how many jobs there are, and '{streamed}' is no regular file this program can count (a pipe or device can be read only once): read them from a FILE or ::: arguments");
        }

        if (options.State is { } ownFile
            && (new[] { options.JobLog, options.LogFile, input }.Any(other => other is not null && SameFile(ownFile, other)) || IsFile(ownFile, inputFile)))
        {
            return await outputs.FailAsync(errors, $"--state must be a file of its own, not the input, the joblog or the log, got '{ownFile}'");
        }

        // The results directory is no file of the others' (said as such, not as "a directory" once it was made).
        if (options.Results is { } resultsPath
            && new[] { ("--state", options.State), ("--joblog", options.JobLog), ("--log", options.LogFile) }
                .FirstOrDefault(other => other.Item2 is not null && SameFile(resultsPath, other.Item2)) is (var sharing, { } sharedPath))
        {
            return await outputs.FailAsync(errors, $"--results and {sharing} name the same path '{sharedPath}': give each its own");
        }

        if (!options.Cluster && CapturedOutput.CannotSpool() is { } spoolProblem)
        {
            return await outputs.FailAsync(errors, $"cannot keep job output past 64 KiB in TMPDIR '{Path.GetTempPath()}': {spoolProblem}");
        }

        // Every output's path is checked before the first is made: a usage error leaves nothing behind (what only opening
        // an output finds is removed again, RunOutputs).
        if (RunOutputs.PathProblem(options) is { } pathProblem)
        {
            return await outputs.FailAsync(errors, pathProblem);
        }

        // Made before the input opens (a run waiting for its stdin or FIFO shows its directory), and unmade by a usage error
        // (of the input, or of an output opened later): a mistyped input file leaves no empty results directory behind.
        if (options.Results is { } results && outputs.CreateResults(results) is { } resultsProblem)
        {
            return await outputs.FailAsync(errors, $"--results: cannot create '{results}': {resultsProblem}");
        }

        Stream jobs;
        ArgumentJobs? arguments = null;
        try
        {
            // Opening a FIFO waits for its writer, and sources beside others are read in full before any job starts (stdin
            // until it closes).
            var opening = UnlessStoppedAsync(async () =>
            {
                if (options.Sources is { } sources)
                {
                    var (opened, problem) = await ArgumentJobs.OpenAsync(sources, options.Template!, Console.OpenStandardInput);
                    return (opened, (Stream)Stream.Null, problem);
                }

                return ((ArgumentJobs?)null, input is null ? Console.OpenStandardInput() : new FileStream(input, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.Asynchronous), (string?)null);
            }, interrupts);
            (arguments, jobs, var openProblem) = await opening;
            if (openProblem is not null)
            {
                return await outputs.FailAsync(errors, openProblem);
            }
        }
        catch (OperationCanceledException) when (interrupts.StopInput.IsCancellationRequested)
        {
            await errors.WriteLineAsync("actorqueue: interrupted while opening or reading the input; no job started");
            return Usage.InterruptedExitCode;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return await outputs.FailAsync(errors, $"cannot read '{options.Input}': {Usage.Reason(options.Input, ex)}");
        }

        await using (jobs)
        {
            FileStream? logHeld = null;
            if (options.LogFile is { } logFile)
            {
                try
                {
                    // Opened once and held for the run, which also checks that it can be written: a FIFO's open waits for
                    // its reader, and a check that opened and closed it would end a reader that reads to the end (cat)
                    // before the log's own open, which would then wait for ever. Made by the run only if its own open created it.
                    (logHeld, var logMade) = await UnlessStoppedAsync(
                        () => Task.FromResult(FileIdentity.OpenCreating(logFile, FileMode.Append, FileAccess.Write, FileShare.ReadWrite)), interrupts);
                    outputs.Made(logFile, logMade);
                }
                catch (OperationCanceledException) when (interrupts.StopInput.IsCancellationRequested)
                {
                    await errors.WriteLineAsync($"actorqueue: interrupted while opening --log '{logFile}'; no job started");
                    return Usage.InterruptedExitCode;
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
                {
                    return await outputs.FailAsync(errors, $"--log: cannot write '{logFile}': {Usage.Reason(logFile, ex)}");
                }
            }

            await using var ownedLog = logHeld;

            RunState? state = null;
            if (options.State is { } statePath)
            {
                // A state (and lock file) this open made goes again if the run is refused (RunState.DisposeAndRemoveIfMade,
                // at the close below); a refused open removed what it made itself, and never what another process made.
                try
                {
                    state = RunState.Open(statePath, create: true);
                }
                catch (RunStateException ex)
                {
                    return await outputs.FailAsync(errors, $"--state: {ex.Message}");
                }
            }

            using var ownedState = outputs.Closing(state);
            JobLog? jobLog = null;
            if (options.JobLog is { } path)
            {
                try
                {
                    // With --state the joblog of a restarted run goes on where it stopped, as with --resume. Nothing in an
                    // existing joblog changes until the run starts (JobLog.BeginAsync, in the job runner).
                    var continued = state is not null && state.Jobs().Count > 0;
                    jobLog = await JobLog.OpenAsync(path, resume: options.Resume || continued, rerunFailed: options.ResumeFailed, interrupts.StopInput);
                    outputs.Made(path, jobLog.Made);
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or InvalidDataException)
                {
                    return await outputs.FailAsync(errors, ex is InvalidDataException ? $"--joblog: {ex.Message}" : $"--joblog: cannot write '{path}': {Usage.Reason(path, ex)}");
                }
                catch (RunStateException ex)
                {
                    return await outputs.FailAsync(errors, $"--state: {ex.Message}");
                }
            }

            using (outputs.Closing(jobLog))
            {
                Func<CancellationToken, IAsyncEnumerable<object>> read = arguments is not null
                    ? arguments.ReadAsync
                    : cancellationToken => JobReader.ReadAsync(jobs, options.Jsonl, cancellationToken);
                var total = arguments?.Count is { } count ? Task.FromResult<long?>(count)
                    : options.Sources is { Sources: [{ File: { } file and not "-" }] } ? Task.Run(() => JobReader.CountAsync(file, everyLine: true))
                    : input is null ? Task.FromResult<long?>(null) : Task.Run(() => JobReader.CountAsync(input));
                return await RunJobsAsync(options, read, total, new RunConsole(stdout, stderr, options.Tag, interrupts.Kill), errors, jobLog, state, interrupts, outputs);
            }
        }
    }

    private static async Task<int> RunJobsAsync(RunOptions options, Func<CancellationToken, IAsyncEnumerable<object>> input, Task<long?> total,
        RunConsole console, TextWriter errors, JobLog? jobLog, RunState? state, Interrupts interrupts, RunOutputs outputs)
    {
        if (options.Jobs > JobRun.MaxWorkers)
        {
            // As GNU parallel runs as many jobs as it can when -j asks for more, and says so.
            await console.LineAsync($"actorqueue: {options.JobsOption} {options.Jobs} is more than the {JobRun.MaxWorkers} jobs that can run at once: running at most {JobRun.MaxWorkers} at once");
        }

        if (JobProcess.Setsid is null && !options.Cluster)
        {
            await console.LineAsync("actorqueue: setsid (util-linux) not found: jobs share this process group, so a terminal's Ctrl-C reaches them too");
        }

        if (options.LogFile is { } logFile)
        {
            // Structured JSON (CLEF) for every event: the library's queue and limiter logs and one event per job.
            LogSinkFailure.Watch(logFile);
            var logging = new LoggerConfiguration().MinimumLevel.Information().WriteTo.Logger(Log.Logger);
            try
            {
                ILogEventSink sink = new LogFileSink(logFile, new CompactJsonFormatter(), interrupts.Kill);
                if (state is not null)
                {
                    // Until the state is accepted (it belongs to this input, its queue opened) nothing goes to the log.
                    sink = outputs.HeldLog = new HeldLogSink(sink);
                }

                logging = logging.WriteTo.Sink(sink);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                LogSinkFailure.Report(logFile, ex.Message); // it could be opened a moment ago: the run goes on without it
            }

            Log.Logger = logging.CreateLogger();
        }

        // A file's job count comes from a second, streaming pass, so progress can show an ETA; stdin has no total.
        if (!options.Cluster)
        {
            var run = new JobRun(options, console, jobLog, interrupts, total, LocalJobExecutor.Instance, state) { Accepted = outputs.Accept };
            var exitCode = await run.ExecuteAsync(input);
            if (run.Refused)
            {
                outputs.Refused(); // refused for its --state or --joblog before any job: the outputs it made go too
            }

            return exitCode;
        }

        // Stops the run as interrupted before the coordinator's certificate ends (exit 78; --resume runs what did not start).
        using var expiry = CertificateExpiry.Watch(options.Certificates, options.ClusterNode!, coordinator: true, errors, interrupts);
        ClusterSession? cluster;
        try
        {
            cluster = await ClusterSession.StartCoordinatorAsync(options.ClusterNode!, options.MinNodes,
                JobRun.ReadAhead(options), errors, options.Quiet, interrupts.StopInput);
        }
        catch (ArgumentException ex)
        {
            return await outputs.FailAsync(errors, ex.Message);
        }

        if (cluster is null)
        {
            await errors.WriteLineAsync("actorqueue: interrupted while waiting for worker nodes; no job started");
            return expiry?.Exit(Usage.InterruptedExitCode) ?? Usage.InterruptedExitCode;
        }

        await using (cluster)
        {
            var exitCode = await new JobRun(options, console, jobLog, interrupts, total, cluster.Executor) { Accepted = outputs.Accept }.ExecuteAsync(input);
            return expiry?.Exit(exitCode) ?? exitCode;
        }
    }

    /// <summary>
    /// Runs <paramref name="open"/> (an open that may wait: a FIFO's waits for its other end, stdin's reading for its
    /// writer) on the thread pool and gives it up at the first stop, with <see cref="OperationCanceledException"/>: an
    /// interruption before any job starts ends the run at once, not once the other end comes (or never).
    /// </summary>
    private static Task<T> UnlessStoppedAsync<T>(Func<Task<T>> open, Interrupts interrupts) => Task.Run(open).WaitAsync(interrupts.StopInput);

    /// <summary>
    /// Whether two paths name one file: the same path, the same device and inode, or (the file may not exist yet) the
    /// same name in one directory, reached through a symbolic link or not (<see cref="FileIdentity.SameName"/>).
    /// </summary>
    private static bool SameFile(string a, string b) => FileIdentity.SameName(a, b);

    /// <summary>Whether <paramref name="path"/> is the input file (stdin's, when reading <c>-</c>).</summary>
    private static bool IsFile(string path, (ulong, ulong)? input) => input is not null && FileIdentity.Of(path) == input;
}
