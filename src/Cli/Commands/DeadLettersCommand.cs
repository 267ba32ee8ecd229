using System.CommandLine;
using System.Globalization;
using ActorQueue.Actors;
using ActorQueue.Cli.Jobs;
using static ActorQueue.Cli.Commands.CommandLineSyntax;

namespace ActorQueue.Cli.Commands;

/// <summary>
/// <c>actorqueue dead-letters --state FILE [list|requeue|purge] [SEQ...]</c>: the jobs of a <c>run --state</c> whose
/// last attempt failed (after their <c>--retries</c>). <c>list</c> shows them; <c>requeue</c> makes the next
/// <c>run --state FILE</c> run them again; <c>purge</c> forgets them (they stay finished, as failed).
/// </summary>
internal static class DeadLettersCommand
{
    public const string ListHeader = "Seq\tAttempts\tExitval\tSignal\tError\tCommand";

    public static Command Create()
    {
        var state = PathText("--state", "FILE", "the state file of 'actorqueue run --state FILE'");
        state.Required = true;
        var action = new Argument<string>("ACTION")
        {
            Description = "list (the default): one tab-separated line per failed job; requeue: the next 'run --state FILE' runs them again; purge: forget them",
            DefaultValueFactory = _ => "list",
        };
        string[] actions = ["list", "requeue", "purge"];
        action.CompletionSources.Add(actions);
        action.Validators.Add(result =>
        {
            if (result.Tokens is [{ Value: var given }] && !actions.Contains(given, StringComparer.Ordinal))
            {
                result.AddError($"dead-letters takes list, requeue or purge, got '{given}'");
            }
        });
        var seqs = new Argument<string[]>("SEQ")
        {
            Description = "the jobs' sequence numbers ({#}); none for every dead letter",
            Arity = ArgumentArity.ZeroOrMore,
        };
        var command = new Command("dead-letters", "the failed jobs of a 'run --state FILE': list them, requeue them for the next run, or purge them")
        {
            state, action, seqs,
        };
        command.SetAction((result, _) => RunAsync(result.GetValue(state)!, result.GetValue(action)!, result.GetValue(seqs) ?? [], Console.Error));
        return command;
    }

    /// <summary>Carries out <paramref name="action"/> on the dead letters of the state file <paramref name="path"/>; returns the exit status.</summary>
    public static async Task<int> RunAsync(string path, string action, IReadOnlyList<string> seqTexts, TextWriter errors)
    {
        var chosen = new List<long>();
        foreach (var text in seqTexts)
        {
            if (!long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var seq) || seq < 1)
            {
                return Usage.Fail(errors, $"dead-letters takes job sequence numbers (whole numbers >= 1), got '{text}'");
            }

            chosen.Add(seq);
        }

        // Only this command's answer goes to stdout; anything the actor system prints while it starts goes to stderr.
        var stdout = new StreamWriter(Console.OpenStandardOutput()) { AutoFlush = true };
        Console.SetOut(errors);
        RunState state;
        try
        {
            state = RunState.Open(path, create: false);
        }
        catch (RunStateException ex)
        {
            return Usage.Fail(errors, $"--state: {ex.Message}");
        }

        using (state)
        {
            try
            {
                // Nothing runs. A failed job whose dead-lettering a kill cut short (the state records a failure before
                // the journal does) becomes its dead letter first, so it is listed, requeued and purged as any other.
                await using (var settling = DurableJobQueue.Open(state, capacity: 1))
                {
                    await settling.SettleRecoveredAsync();
                }

                await using var queue = new BoundedQueue<QueuedJob>(1, DurableJobQueue.Durability(path), DurableJobQueue.QueueName);
                await queue.StartAsync(); // no workers: the start waits for the journal's recovery
                var failed = state.Jobs().Values.Where(j => j.Standing == JobStanding.Failed).ToDictionary(j => j.Seq);
                // A dead letter counts while the state records its job as failed (a run that restarts purges the others).
                var letters = (await queue.DeadLettersAsync())
                    .Where(l => failed.ContainsKey(l.Item.Seq) && (chosen.Count == 0 || chosen.Contains(l.Item.Seq)))
                    .GroupBy(l => l.Item.Seq)
                    .Select(g => g.MaxBy(l => l.Id)!)
                    .OrderBy(l => l.Item.Seq)
                    .ToList();
                // A number that is no dead letter (a typo, a job that succeeded) is said, and nothing changes.
                if (chosen.FirstOrDefault(seq => !letters.Any(l => l.Item.Seq == seq)) is var missing and > 0)
                {
                    return Usage.Fail(errors, $"dead-letters {action}: job {missing} is not a dead letter of '{path}' ('actorqueue dead-letters --state {path}' lists them)");
                }

                switch (action)
                {
                    case "requeue":
                        state.Requeue(letters.Select(l => l.Item.Seq)); // first: a kill before the queue's requeue leaves a stale letter, purged by the next run
                        await queue.RequeueDeadLettersAsync([.. letters.Select(l => l.Id)]);
                        await errors.WriteLineAsync($"actorqueue: requeued {letters.Count} failed job(s); the next 'actorqueue run --state {path}' with the same input runs them");
                        break;
                    case "purge":
                        await queue.PurgeDeadLettersAsync([.. letters.Select(l => l.Id)]);
                        await errors.WriteLineAsync($"actorqueue: purged {letters.Count} dead letter(s); their jobs stay finished (failed)");
                        break;
                    default:
                        await stdout.WriteLineAsync(ListHeader);
                        foreach (var letter in letters)
                        {
                            var job = failed[letter.Item.Seq];
                            await stdout.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                                $"{job.Seq}\t{job.Attempts}\t{job.Exit}\t{job.Signal}\t{job.Error ?? letter.LastError}\t{job.Command.ReplaceLineEndings(" ")}"));
                        }

                        break;
                }

                return 0;
            }
            catch (Exception ex) when (ex is QueueStorageException or RunStateException)
            {
                return Usage.Fail(errors, $"--state: {ex.Message}");
            }
        }
    }
}
