using ActorQueue.Actors;

namespace ActorQueue.Tests.Queues;

/// <summary>
/// The hand-over state machine between the router, the worker actor and the worker's task, driven directly from
/// several threads (no actors; test threads play the router and the worker actor): each run handed over is taken
/// exactly once, a stop always ends a waiting task, and a crash report names the run the task works on.
/// </summary>
[Collection(ChannelStress.Name)]
public class WorkerRunStressTests
{
    [Fact]
    public async Task Every_run_handed_to_the_real_task_loop_is_worked_through_once_in_order()
    {
        const int runs = 20_000;
        var router = new MailboxRef("router");
        var worked = new List<int>();
        var spec = new WorkerSpec<int>((item, _) =>
        {
            worked.Add(item); // the task loop is one flow: its items run one after another
            return item % 3 == 0 ? Task.Run(() => { }) : Task.CompletedTask;
        }, Count: 1, ErrorHandler: null, Limiter: null);
        var run = new WorkerRun<int>(ItemsOf(1), 1);

        var task = Task.Run(() => WorkerTask<int>.RunAsync(spec, QueueParts.Telemetry(), run, router, new MailboxRef("worker")));
        var refused = 0;
        for (var sequence = 1; sequence < runs; sequence++)
        {
            // Hand the next run over the moment the report arrives, racing the task as it parks.
            var spin = new SpinWait();
            var deadline = DateTime.UtcNow.AddSeconds(10);
            while (router.Told < sequence)
            {
                Assert.True(DateTime.UtcNow < deadline, $"run {sequence} was never reported");
                spin.SpinOnce(sleep1Threshold: -1);
            }

            refused += run.TryHandOver(ItemsOf(sequence + 1), sequence + 1) ? 0 : 1;
        }

        await Poll.UntilAsync(() => router.Told == runs, TimeSpan.FromSeconds(10), () => $"the last run is reported ({router.Told} of {runs})");
        run.Cancel();
        await task.WaitAsync(TimeSpan.FromSeconds(10));

        Assert.Equal(0, refused);
        var reports = router.Messages.Cast<ItemsFinished>().ToList();
        Assert.Equal(Enumerable.Range(1, runs).Select(s => new ItemsFinished(s, s % 3 + 1, 0)), reports);
        Assert.Equal(Enumerable.Range(1, runs).SelectMany(ItemsOf), worked);
    }

    [Fact]
    public void A_hand_over_racing_a_task_about_to_park_is_taken_exactly_once()
    {
        var (broken, first) = Race.Rounds(
            rounds: 20_000,
            setup: _ => new Parking(),
            first: parking => parking.Next = parking.Run.NextAsync(),
            second: parking => parking.HandedOver = parking.Run.TryHandOver([2, 3], 2),
            holds: parking =>
            {
                if (!parking.HandedOver)
                {
                    return "the hand-over was refused though the task waits for it";
                }

                if (!parking.Next.IsCompleted)
                {
                    return "the task was left parked with a run handed over";
                }

                var took = parking.Next.Result; // once: taking the result takes the run
                return took && parking.Run.Items is [2, 3] && parking.Run.Progress.Sequence == 2
                    ? null
                    : $"the task took {(took ? $"[{string.Join(", ", parking.Run.Items ?? [])}] as run {parking.Run.Progress.Sequence}" : "no run")}";
            });

        Assert.True(broken == 0, $"{broken} rounds lost or garbled a run; first: {first}");
    }

    [Fact]
    public void A_stop_racing_a_task_about_to_park_always_ends_the_task()
    {
        var (broken, first) = Race.Rounds(
            rounds: 100_000,
            setup: _ => new Parking(),
            first: parking => parking.Next = parking.Run.NextAsync(),
            second: parking => parking.Run.Cancel(),
            holds: parking => !parking.Next.IsCompleted
                ? "the task was left parked after the worker stopped"
                : parking.Next.Result ? "the task went on after the worker stopped" : null,
            maxJitter: 4);

        Assert.True(broken == 0, $"{broken} rounds left a task behind; first: {first}");
    }

    [Fact]
    public void A_crash_report_names_the_run_the_task_took_or_the_task_starts_none_of_its_items()
    {
        var (broken, first) = Race.Rounds(
            rounds: 50_000,
            setup: _ =>
            {
                var parking = new Parking();
                parking.Run.TryHandOver([2], 2); // handed over before the task looks for it
                return parking;
            },
            first: parking =>
            {
                // The task takes the run and checks, as before every item, whether it may start one.
                parking.Next = parking.Run.NextAsync();
                parking.StartsItem = !parking.Run.ShouldStop;
            },
            second: parking => parking.Reported = parking.Run.StopForCrash().Sequence,
            holds: parking => parking.StartsItem && parking.Reported != 2
                ? $"the task starts run 2 while the crash report names run {parking.Reported}"
                : null);

        Assert.True(broken == 0, $"{broken} rounds would count an item twice; first: {first}");
    }

    [Fact]
    public void Hand_overs_racing_the_task_as_it_parks_run_after_run_are_each_taken_once()
    {
        const int runs = 300_000;
        var run = new WorkerRun<int>([1], 1);
        var reported = 0;
        var abandoned = false;
        string? wrong = null;
        var task = new Thread(() =>
        {
            // The task's loop without the items: report, then look for the next run at once or a little later.
            var jitter = new Random(5);
            for (var sequence = 1; sequence < runs && !Volatile.Read(ref abandoned); sequence++)
            {
                run.OpenForHandOver();
                Volatile.Write(ref reported, sequence);
                var spin = jitter.Next(8) - 4;
                if (spin > 0)
                {
                    Thread.SpinWait(spin);
                }

                var next = run.NextAsync();
                if (!Race.SpinUntil(() => next.IsCompleted) || !next.Result || run.Items is not [var item] || item != sequence + 1)
                {
                    wrong = $"after run {sequence} the task took {(next.IsCompleted ? $"[{string.Join(", ", run.Items ?? [])}]" : "nothing")}";
                    return;
                }
            }
        }) { IsBackground = true };
        task.Start();

        var refused = 0;
        try
        {
            for (var sequence = 1; sequence < runs && wrong is null; sequence++)
            {
                Assert.True(Race.SpinUntil(() => Volatile.Read(ref reported) >= sequence || wrong is not null), $"run {sequence} was never reported");
                refused += wrong is null && !run.TryHandOver([sequence + 1], sequence + 1) ? 1 : 0;
            }
        }
        finally
        {
            Volatile.Write(ref abandoned, true);
            run.Cancel();
            task.Join();
        }

        Assert.Null(wrong);
        Assert.Equal(0, refused);
    }

    private static int[] ItemsOf(int sequence) => Enumerable.Range(sequence * 10, sequence % 3 + 1).ToArray();

    /// <summary>A task that has worked through run 1 and reported it: the router may hand over from now on.</summary>
    private sealed class Parking
    {
        public Parking()
        {
            Run.OpenForHandOver();
        }

        public WorkerRun<int> Run { get; } = new([1], 1);

        public ValueTask<bool> Next { get; set; }

        public bool HandedOver { get; set; }

        public bool StartsItem { get; set; }

        public long Reported { get; set; }
    }
}
