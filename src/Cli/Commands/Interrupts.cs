namespace ActorQueue.Cli.Commands;

/// <summary>
/// The runner's interruptions, in two stages. The first (a Ctrl-C, SIGTERM or SIGHUP) stops new jobs and lets running
/// jobs finish; a Ctrl-C after it kills the running jobs, which are then not logged as finished.
/// </summary>
internal sealed class Interrupts : IDisposable
{
    private readonly CancellationTokenSource _stopInput = new();
    private readonly CancellationTokenSource _kill = new();

    private TextWriter? _errors;

    /// <summary>0 running, 1 stopping (running jobs finish), 2 killing.</summary>
    private int _stage;

    /// <summary>
    /// Set once the first stage's line was said. The stop is cancelled before it is said (a stderr nobody reads must not
    /// hold the stop), so the run can end on another thread before the signal's thread says why: the exit waits for it.
    /// </summary>
    private readonly ManualResetEventSlim _firstSaid = new();

    /// <summary>Set by the runner's exit: a signal after it is ignored (its sources are disposed, its run is over).</summary>
    private volatile bool _exited;

    /// <summary>
    /// Set when the command's outcome was decided before any job (<see cref="Decided"/>): a signal still stops (stderr's
    /// writes give up as at a stop) but says no line.
    /// </summary>
    private volatile bool _decided;

    /// <summary>How long the exit waits for the first stage's line: a stderr nobody reads must not hold the exit either.</summary>
    private static readonly TimeSpan SayBound = TimeSpan.FromSeconds(2);

    public CancellationToken StopInput => _stopInput.Token;

    /// <summary>Whether the first stage's line was said (or could not be: no terminal).</summary>
    public bool FirstLineSaid => _firstSaid.IsSet;

    /// <summary>
    /// What runs the jobs a kill leaves unfinished (<see cref="RunOptions.RerunsUnfinished"/>), said with the kill; set by
    /// <c>run</c> before its first job, <c>null</c> elsewhere (a node's killed jobs run again on another node).
    /// </summary>
    public string? RerunsKilled { get; set; }

    /// <summary>
    /// What the first stage does, said in its line: <c>null</c> for a run (no new jobs start, running jobs finish); a
    /// node sets its own, since a node stops at once (it leaves the cluster and the jobs running on it go back to the
    /// queue), and a run's words said the opposite of what it did.
    /// </summary>
    public string? FirstStage { get; set; }

    /// <summary>What the kill line says of the killed jobs: not logged, and what runs them, in the run's mode.</summary>
    private string Killing => "killing running jobs" + RerunsKilled switch
    {
        null => "",
        "--resume" => " (not logged, --resume runs them)",
        var rerun => $" ({rerun} runs them)",
    };

    public CancellationToken Kill => _kill.Token;

    /// <summary>A Ctrl-C (SIGINT): the first stops new jobs, the next kills running ones.</summary>
    public void Press()
    {
        if (_exited)
        {
            return;
        }

        if (Interlocked.CompareExchange(ref _stage, 1, 0) == 0)
        {
            Cancel(_stopInput); // before saying so: a stderr whose reader stopped reading would hold the stop
            Say($"interrupted: {FirstStage ?? "no new jobs start; running jobs finish (Ctrl-C again kills them)"}");
            _firstSaid.Set();
        }
        else if (Interlocked.Exchange(ref _stage, 2) == 1)
        {
            Cancel(_kill);
            Say(Killing);
        }
    }

    /// <summary>SIGTERM or SIGHUP (<paramref name="why"/> says which): the first stage only, however often it comes.</summary>
    public void Stop(string why)
    {
        if (!_exited && Interlocked.CompareExchange(ref _stage, 1, 0) == 0)
        {
            Cancel(_stopInput);
            Say($"{why}: {FirstStage ?? "no new jobs start; running jobs finish (Ctrl-C kills them)"}");
            _firstSaid.Set();
        }
    }

    /// <summary>SIGQUIT (<paramref name="why"/>): both stages at once, as a first and a second Ctrl-C.</summary>
    public void KillAll(string why)
    {
        if (!_exited && Interlocked.Exchange(ref _stage, 2) != 2)
        {
            Cancel(_stopInput);
            Cancel(_kill);
            Say($"{why}: no new jobs start; {Killing}");
            _firstSaid.Set();
        }
    }

    /// <summary>
    /// Cancels <paramref name="source"/> with its callbacks on the thread pool, not on the signal's thread: the input's
    /// read awaits the stop, so an inline cancellation ran the rest of the run there, through the exit's wait for the
    /// line this same thread was still to say (<see cref="Dispose"/>). A source the exit already disposed is left alone.
    /// </summary>
    private static void Cancel(CancellationTokenSource source)
    {
        try
        {
            _ = source.CancelAsync(); // its task faults only if a callback throws; none here does
        }
        catch (ObjectDisposedException)
        {
            // The runner exited between the signal's check and here: nothing is left to stop.
        }
    }

    /// <summary>
    /// Where the stages' lines go: <c>Console.Error</c> unless set. The process's <see cref="QueuedStderr"/> sets itself
    /// (<see cref="QueuedStderr.Install"/>), so the line never blocks the signal's thread, nor the exit's wait for it.
    /// </summary>
    public TextWriter? Errors
    {
        get => Volatile.Read(ref _errors);
        set => Volatile.Write(ref _errors, value);
    }

    /// <summary>
    /// The command's outcome is decided before any job started (a usage error, whose line is being written): a signal
    /// from now on still stops — stderr's writes give up as at a stop, so a reader that takes nothing cannot hold the
    /// process — but says no line of its own: "no new jobs start; running jobs finish" would be about jobs there are
    /// none of, and would come after the usage error's line.
    /// </summary>
    public void Decided() => _decided = true;

    private void Say(string message)
    {
        if (_decided)
        {
            return;
        }

        try
        {
            (Errors ?? Console.Error).WriteLine($"\nactorqueue: {message}");
        }
        catch (IOException)
        {
            // No terminal any more (SIGHUP): the interruption still takes effect.
        }
    }

    /// <summary>
    /// The runner's exit: its command is over, so a signal from now on is ignored (its handler, still registered while
    /// stderr's tail is written, keeps its default action from killing the process, and the exit status stays the
    /// command's). An interruption whose cancellation ended the run before its line was said (the line went missing:
    /// "interrupted while opening or reading the input" alone, CliRound33ReviewTests' FIFO case) is waited for, within
    /// <see cref="SayBound"/>, so the line is queued before stderr's last lines are written.
    /// </summary>
    public void Exit()
    {
        _exited = true;
        if (Volatile.Read(ref _stage) != 0)
        {
            _firstSaid.Wait(SayBound);
        }
    }

    /// <remarks>Exits (<see cref="Exit"/>), if the runner has not yet.</remarks>
    public void Dispose()
    {
        Exit();
        _stopInput.Dispose();
        _kill.Dispose();
    }
}
