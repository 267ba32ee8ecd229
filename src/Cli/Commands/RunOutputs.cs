using ActorQueue.Cli.Jobs;

namespace ActorQueue.Cli.Commands;

/// <summary>
/// What <c>actorqueue run</c> makes of its outputs before its first job (the <c>--results</c> directory and the parents
/// it needed, a new <c>--log</c>, a new <c>--joblog</c>; a new <c>--state</c> and its lock go with <see cref="RunState.DisposeAndRemoveIfMade"/>), so that a usage error leaves
/// nothing behind. The outputs' paths are checked before any is made (<see cref="PathProblem"/>); what only opening an
/// output finds (a file that is no state, a joblog that cannot be written) is refused with <see cref="FailAsync"/>, and what
/// the run made is removed (<see cref="RemoveUnused()"/>): only a file the run's own creating open made (never one that
/// was there, or that another process made while the run started: h232's review), only while the path still names it
/// (the joblog only while nobody holds it), and a directory only while it is empty. The outputs were made
/// one after another, each before the later ones' checks, so <c>--log L --state S --joblog nowhere/x</c> left
/// <c>L</c>, <c>S</c> and <c>S.lock</c> behind.
/// </summary>
/// <remarks>
/// A run that ends before it was accepted without being refused (interrupted
/// while it waited for its input, or for the input its state recorded, or for a cluster's nodes: no job started)
/// removes what it made and nothing was written to: the results directory (while empty) and a joblog never begun (no
/// header: while empty); its log stays, with the run's events (round 52).
/// </remarks>
internal sealed class RunOutputs
{
    /// <summary>The files the run made, with their identity when they were made (another file there since is not removed).</summary>
    private readonly List<(string Path, (ulong Device, ulong Inode) Identity)> _files = [];

    /// <summary>The results directory and the outermost directory that creating it made, or <c>null</c>.</summary>
    private (string Results, string Made)? _directories;

    /// <summary>Whether the run was refused with a usage error (<see cref="FailAsync"/>).</summary>
    private bool _refused;

    /// <summary>Whether the run was accepted (<see cref="Accept"/>): jobs may have started, and what it made is its record.</summary>
    private bool _accepted;

    /// <summary>
    /// Why one of the outputs' paths cannot be used, found without making anything: a file output (<c>--log</c>,
    /// <c>--state</c>, <c>--joblog</c>) that is a directory or whose directory is missing (or is a file), a
    /// <c>--results</c> directory under a file. Said as opening or creating it says it. <c>null</c> if none is.
    /// </summary>
    public static string? PathProblem(RunOptions options)
    {
        if (options.Results is { } results && Path.GetDirectoryName(Path.GetFullPath(results).TrimEnd('/')) is { } parent && !Directory.Exists(parent)
            && Usage.MissingDirectory(results) is { } notDirectory && notDirectory.EndsWith("is a file, not a directory", StringComparison.Ordinal))
        {
            // A missing parent is made with the directory; a file among them cannot be.
            return $"--results: cannot create '{results}': {notDirectory}";
        }

        foreach (var (option, path) in new[] { ("--log", options.LogFile), ("--state", options.State), ("--joblog", options.JobLog) })
        {
            if (path is null)
            {
                continue;
            }

            if (Directory.Exists(path))
            {
                return option == "--state" ? $"--state: '{path}' is a directory, not a state file" : $"{option}: cannot write '{path}': it is a directory";
            }

            var full = Path.GetFullPath(path).TrimEnd('/');
            if (full.Length > 0 && Path.GetDirectoryName(full) is { } directory && !Directory.Exists(directory))
            {
                return $"{option}: cannot {(option == "--state" ? "use" : "write")} '{path}': {Usage.MissingDirectory(path)}";
            }
        }

        return null;
    }

    /// <summary>Creates the results directory, remembering what it made; why it cannot, or <c>null</c>.</summary>
    public string? CreateResults(string results)
    {
        var made = FirstMissing(results);
        try
        {
            new ResultsDirectory(results).Create();
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return Usage.Reason(results, ex);
        }

        if (made is not null)
        {
            _directories = (results, made);
        }

        return null;
    }

    /// <summary>
    /// Remembers <paramref name="path"/> as made by the run when <paramref name="made"/> (the identity of the file its own
    /// creating open made, <see cref="FileIdentity.OpenCreating"/>) says so. Nothing else is ever removed: not a file that
    /// was there before the open, nor one another process made while the run started (an open that failed, or found
    /// the file there, records nothing).
    /// </summary>
    public void Made(string path, (ulong Device, ulong Inode)? made)
    {
        if (made is { } identity)
        {
            _files.Add((path, identity));
        }
    }

    /// <summary>
    /// Closes the run's state when disposed: a refused run's state goes if its open made it
    /// (<see cref="RunState.DisposeAndRemoveIfMade"/>, still holding its lock); otherwise it is only closed.
    /// </summary>
    public IDisposable? Closing(RunState? state) =>
        state is null ? null : new Closer(() => (_refused ? (Action)state.DisposeAndRemoveIfMade : state.Dispose)());

    /// <summary>
    /// Closes the joblog when disposed; then a refused run removes the one it made, and so does a run that ended before it
    /// was accepted, if nothing was written to it: only while nobody holds it (<see cref="FileIdentity.RemoveUnheld"/>:
    /// another run that opened it meanwhile, or another process writing its <c>--log</c> there, keeps it).
    /// </summary>
    public IDisposable? Closing(JobLog? jobLog) =>
        jobLog is null ? null : new Closer(() =>
        {
            jobLog.Dispose(); // first: the removal's exclusive lock would find this run's own
            RemoveUnused(jobLog.Path, unheld: true);
        });

    /// <summary>
    /// The run is accepted (its state belongs to its input, its queue opened, its joblog began): jobs may start, and what
    /// it made stays. The <c>--log</c> events held until now are written (<see cref="HeldLog"/>).
    /// </summary>
    public void Accept()
    {
        _accepted = true;
        HeldLog?.Release();
    }

    /// <summary>Marks the run refused after its line was said elsewhere (the job runner's refusal of its --state, before any job): what it made goes once it has let go of it.</summary>
    public void Refused() => _refused = true;

    /// <summary>Writes the one usage-error line (<see cref="Usage.FailAsync"/>) and marks the run refused: what it made goes once it has let go of it.</summary>
    public Task<int> FailAsync(TextWriter errors, string problem)
    {
        _refused = true;
        return Usage.FailAsync(errors, problem);
    }

    /// <summary>The <c>--log</c> events held until the run is accepted (with <c>--state</c>), or <c>null</c>: a refused run writes none.</summary>
    public HeldLogSink? HeldLog { get; set; }

    /// <summary>
    /// Removes what the run made, if it was refused (<see cref="FailAsync"/>), or the results directories it made if it
    /// ended before it was accepted (<see cref="Accept"/>: no job started), each only while empty; called once it holds
    /// none of it open.
    /// </summary>
    public void RemoveUnused()
    {
        if (_accepted && !_refused)
        {
            return;
        }

        if (_refused)
        {
            HeldLog?.Discard();
            foreach (var (path, _) in Enumerable.Reverse(_files).ToList())
            {
                RemoveUnused(path, unheld: false);
            }

            _files.Clear();
        }

        if (_directories is var (results, made))
        {
            Unmake(results, made);
            _directories = null;
        }
    }

    /// <summary>
    /// Removes the file the run made at <paramref name="path"/>, if it was refused; a run that ended before it was
    /// accepted removes it too, if it is empty (a joblog never begun). Only while the path still names that file, and,
    /// when <paramref name="unheld"/> (the joblog, which the run has closed), only while nobody holds it
    /// (<see cref="FileIdentity.RemoveUnheld"/>): the new joblog of a run interrupted while it waited for its input was
    /// removed while another process wrote its <c>--log</c> there (h243). The run's own <c>--log</c> is still open in
    /// its log sink when it is removed, so it cannot be told from another holder that way.
    /// </summary>
    private void RemoveUnused(string path, bool unheld)
    {
        var index = _files.FindIndex(file => file.Path == path);
        if ((_accepted && !_refused) || index < 0)
        {
            return;
        }

        var identity = _files[index].Identity;
        _files.RemoveAt(index);
        if (unheld)
        {
            FileIdentity.RemoveUnheld(path, identity, held => _refused || held.Length == 0);
            return;
        }

        try
        {
            if (FileIdentity.Names(path, identity) && (_refused || new FileInfo(path).Length == 0))
            {
                File.Delete(path);
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Not ours to remove after all: left as it is.
        }
    }

    /// <summary>Runs its action once, when disposed.</summary>
    private sealed class Closer(Action close) : IDisposable
    {
        private Action? _close = close;

        public void Dispose() => Interlocked.Exchange(ref _close, null)?.Invoke();
    }

    /// <summary>The outermost directory of <paramref name="path"/> that does not exist yet (what creating it makes), or <c>null</c>.</summary>
    private static string? FirstMissing(string path)
    {
        string? missing = null;
        for (var directory = Path.GetFullPath(path); directory is not null && !Directory.Exists(directory); directory = Path.GetDirectoryName(directory))
        {
            missing = directory;
        }

        return missing;
    }

    /// <summary>Removes the directories creating <paramref name="results"/> made (up to <paramref name="made"/>), each only if still empty.</summary>
    private static void Unmake(string results, string made)
    {
        try
        {
            for (var directory = Path.GetFullPath(results); directory is not null && directory.Length >= made.Length; directory = Path.GetDirectoryName(directory))
            {
                Directory.Delete(directory, recursive: false);
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Not empty (something else wrote there meanwhile) or not ours to remove: left as it is.
        }
    }
}
