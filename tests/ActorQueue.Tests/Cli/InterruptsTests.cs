using ActorQueue.Cli.Commands;

namespace ActorQueue.Tests.Cli;

/// <summary>
/// What a signal's handler does with the run: its cancellation must not run the rest of the run on the handler's thread,
/// where the run's exit would wait for a line only that same thread can say.
/// </summary>
public sealed class InterruptsTests
{
    /// <summary>Bounds a wait that only a hang would reach; no assertion reads it.</summary>
    private static readonly TimeSpan Hang = TimeSpan.FromSeconds(30);

    /// <summary>
    /// The input's read awaits the stop's token; cancelling it on the signal's thread ran the read's continuation there,
    /// through the runner's exit (<see cref="Interrupts.Dispose"/> waiting for the stop's line) before that thread said
    /// the line: the process ended with "interrupted while opening or reading the input" and no "terminated (SIGTERM)"
    /// (CliRound33ReviewTests' stdin case, one CI run in many).
    /// Failed before: the callback ran on the signalling thread and the exit found the line unsaid.
    /// </summary>
    [Theory]
    [InlineData("SIGTERM")]
    [InlineData("SIGINT")]
    [InlineData("SIGQUIT")]
    public async Task A_run_ended_by_the_stop_exits_after_the_stops_line_off_the_signals_thread(string signal)
    {
        var interrupts = new Interrupts();
        var exited = new TaskCompletionSource<(int Thread, bool Said)>(TaskCreationOptions.RunContinuationsAsynchronously);
        using var readEnds = interrupts.StopInput.Register(() =>
        {
            interrupts.Dispose(); // the runner's exit, as when the read's continuation ends the run
            exited.TrySetResult((Environment.CurrentManagedThreadId, interrupts.FirstLineSaid));
        });

        var signalThread = await OnThreadOfItsOwn(() => Signal(interrupts, signal));

        var (exitThread, said) = await exited.Task.WaitAsync(Hang);
        Assert.NotEqual(signalThread, exitThread);
        Assert.True(said, "the run's exit found the stop's line unsaid");
    }

    /// <summary>
    /// The second Ctrl-C's kill stops running jobs' process groups through the kill token's callbacks: they must not run
    /// on the signal's thread either (a kill that ends the run would race the kill's line to the exit).
    /// Failed before: the kill's callback ran on the signalling thread.
    /// </summary>
    [Fact]
    public async Task The_kills_callbacks_run_off_the_signals_thread()
    {
        using var interrupts = new Interrupts();
        var killed = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        using var killing = interrupts.Kill.Register(() => killed.TrySetResult(Environment.CurrentManagedThreadId));

        await OnThreadOfItsOwn(interrupts.Press);
        var signalThread = await OnThreadOfItsOwn(interrupts.Press);

        Assert.NotEqual(signalThread, await killed.Task.WaitAsync(Hang));
    }

    /// <summary>A signal arriving after the runner's exit disposed the interrupts is ignored, not thrown on the handler's thread.</summary>
    [Fact]
    public async Task A_signal_after_the_exit_is_ignored()
    {
        var interrupts = new Interrupts();
        interrupts.Dispose();

        await OnThreadOfItsOwn(() => interrupts.Stop("terminated (SIGTERM)"));
        await OnThreadOfItsOwn(interrupts.Press);
        await OnThreadOfItsOwn(() => interrupts.KillAll("quit (SIGQUIT)"));

        Assert.False(interrupts.FirstLineSaid);
    }

    private static void Signal(Interrupts interrupts, string signal)
    {
        switch (signal)
        {
            case "SIGTERM":
                interrupts.Stop("terminated (SIGTERM)");
                break;
            case "SIGINT":
                interrupts.Press();
                break;
            default:
                interrupts.KillAll("quit (SIGQUIT)");
                break;
        }
    }

    /// <summary>Runs <paramref name="handler"/> on a thread of its own, as .NET runs a signal's handler; returns that thread's id.</summary>
    private static Task<int> OnThreadOfItsOwn(Action handler)
    {
        var done = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        var thread = new Thread(() =>
        {
            try
            {
                handler();
                done.TrySetResult(Environment.CurrentManagedThreadId);
            }
            catch (Exception ex)
            {
                done.TrySetException(ex);
            }
        })
        { IsBackground = true };
        thread.Start();
        return done.Task.WaitAsync(Hang);
    }
}
