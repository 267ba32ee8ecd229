using System.Diagnostics;
using System.Globalization;
using Xunit.Abstractions;

namespace ActorQueue.Tests.Queues.Durable;

/// <summary>
/// A durable queue in a real process killed with SIGKILL at random points, then started again on the same database:
/// every acknowledged item runs, none more than twice (twice only if it ran before the kill and its completion was not
/// yet journaled), and nothing is lost.
/// </summary>
public sealed class DurableCrashTests(ITestOutputHelper output) : IDisposable
{
    private const int Items = 3000;

    private readonly string _folder = Path.Combine(Path.GetTempPath(), "actorqueue-crash-" + Guid.NewGuid().ToString("N"));

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    public async Task A_queue_killed_at_a_random_point_finishes_every_accepted_item_after_a_restart(int trial)
    {
        Directory.CreateDirectory(_folder);
        var db = Path.Combine(_folder, "queues.db");
        var log = Path.Combine(_folder, "log.txt");
        var random = new Random(trial * 7919);
        var killAfter = random.Next(1, Items * 3 / 4);

        using (var producer = Start("produce", db, log, Items.ToString(CultureInfo.InvariantCulture)))
        {
            await Poll.UntilAsync(() => Lines(log).Count(line => line.StartsWith("a ", StringComparison.Ordinal)) >= killAfter || producer.HasExited,
                TimeSpan.FromSeconds(120), $"the producer acknowledged {killAfter} puts");
            Assert.False(producer.HasExited, "the producer finished before it could be killed");
            producer.Kill(); // SIGKILL on Linux: no shutdown code runs
            await producer.WaitForExitAsync();
        }

        var beforeRestart = Lines(log);
        using (var finisher = Start("finish", db, log))
        {
            var exited = finisher.WaitForExitAsync();
            await exited.WaitAsync(TimeSpan.FromSeconds(120));
            Assert.True(finisher.ExitCode == 0, $"the restarted queue exited {finisher.ExitCode}: {await finisher.StandardError.ReadToEndAsync()}");
        }

        var lines = Lines(log);
        var accepted = lines.Where(l => l.StartsWith("a ", StringComparison.Ordinal)).Select(Item).ToHashSet();
        var runs = lines.Where(l => l.StartsWith("d ", StringComparison.Ordinal)).GroupBy(Item).ToDictionary(g => g.Key, g => g.Count());
        var runsBefore = beforeRestart.Count(l => l.StartsWith("d ", StringComparison.Ordinal));
        var twice = runs.Where(r => r.Value == 2).Select(r => r.Key).ToHashSet();
        output.WriteLine($"trial {trial}: killed after {killAfter} acknowledged ({accepted.Count} in the log), {runsBefore} runs before the kill, " +
                         $"{runs.Count} items run, {twice.Count} twice");

        Assert.Equal("joined", lines[^1]);
        Assert.Equal([], accepted.Where(item => !runs.ContainsKey(item)).Order().ToList()); // lost
        Assert.Equal([], runs.Where(r => r.Value > 2).Select(r => r.Key).ToList()); // run three times or more
        Assert.All(runs.Keys, item => Assert.InRange(item, 0, Items - 1));
        // An item runs again only if it ran before the kill and its completion was not yet journaled. A "c N" line says N
        // completions were journaled, all of items whose "d" lines are above it: of the D items run above it, at most
        // D - N run again. (How many completions a kill catches unwritten depends on the disk, so no fixed bound.)
        var runBeforeKill = beforeRestart.Where(l => l.StartsWith("d ", StringComparison.Ordinal)).Select(Item).ToHashSet();
        Assert.Equal([], twice.Where(item => !runBeforeKill.Contains(item)).Order().ToList()); // run twice after the restart
        var runAbove = 0;
        var rerunAbove = 0;
        var checkedJournal = 0L;
        foreach (var line in beforeRestart)
        {
            if (line.StartsWith("d ", StringComparison.Ordinal))
            {
                runAbove++;
                rerunAbove += twice.Contains(Item(line)) ? 1 : 0;
            }
            else if (line.StartsWith("c ", StringComparison.Ordinal))
            {
                checkedJournal = long.Parse(line.AsSpan(2), CultureInfo.InvariantCulture);
                Assert.True(rerunAbove <= runAbove - checkedJournal,
                    $"{rerunAbove} of the {runAbove} items run before \"{line}\" ran again, though {checkedJournal} completions were journaled");
            }
        }

        output.WriteLine($"trial {trial}: {checkedJournal} completions journaled before the kill; {rerunAbove} of {runAbove} ran again");
    }

    private static int Item(string line) => int.Parse(line.AsSpan(2), CultureInfo.InvariantCulture);

    private static List<string> Lines(string path) => DurableHostProcess.Lines(path);

    private static Process Start(params string[] args) => DurableHostProcess.Start(args);

    public void Dispose()
    {
        try
        {
            Directory.Delete(_folder, recursive: true);
        }
        catch (IOException)
        {
            // left to the system's temporary folder cleanup
        }
    }
}
