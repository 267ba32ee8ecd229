using System.CommandLine;
using ActorQueue.Cli.Commands;
using ActorQueue.Cli.Jobs;
using ActorQueue.Tests.Cli;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Helper 221: the <c>run</c> command's messages say what it does: the ranges it accepts, singular counts, blank
/// <c>--limit</c> tags, an empty certificate password and a <c>--state</c> FILE in a missing directory. Parsing is
/// checked in-process (<see cref="RunSyntax.Bind"/>); what only the running command says, by running it.
/// </summary>
public sealed class CliMessagesRound49Tests : IDisposable
{
    private readonly CliScratch _scratch = new();

    public void Dispose() => _scratch.Dispose();

    /// <summary>
    /// <c>--delay 0</c> (no delay) is accepted, so the message states it beside the range.
    /// Failed before: "--delay takes a duration from 1ms to 1193h (like 2.5, 500ms or 1s), got '0.0001'".
    /// Mutant: the message without "0 (no delay)" is the old code's message, which failed.
    /// </summary>
    [Fact]
    public void The_delay_message_states_that_0_is_accepted()
    {
        Assert.Null(Problem("--delay", "0", "echo", ":::", "a"));

        Assert.Equal($"--delay takes 0 (no delay) or a duration from 1ms to 4294967.294s (like 2.5, 500ms or 1s), got '0.0001'", Problem("--delay", "0.0001", "echo", ":::", "a"));
    }

    /// <summary>
    /// The longest duration accepted is the one the message states, in every unit.
    /// Failed before: "--timeout 4294967s" was accepted, and "1194h" refused as "from 1ms to 1193h" (4294967 s is
    /// 1193.05 h): the message stated less than was accepted.
    /// Mutant (reasoned, not run): Durations.Max lowered to 1193 h with the old message: "4294967.294s" is refused, fails.
    /// </summary>
    [Theory]
    [InlineData("--timeout")]
    [InlineData("--delay")]
    public void The_stated_maximum_is_the_accepted_one(string option)
    {
        foreach (var maximum in (string[])["4294967.294s", "4294967.294", "4294967294ms"])
        {
            Assert.Null(Problem(option, maximum, "echo", ":::", "a"));
        }

        foreach (var over in (string[])["4294967.295s", "4294967295ms", "1194h"])
        {
            var problem = Problem(option, over, "echo", ":::", "a");
            Assert.NotNull(problem);
            Assert.Contains("to 4294967.294s (", problem, StringComparison.Ordinal);
            Assert.EndsWith($"got '{over}'", problem, StringComparison.Ordinal);
        }

        Assert.Equal(TimeSpan.FromMilliseconds(uint.MaxValue - 1), Durations.Parse("4294967294ms"));
    }

    /// <summary>
    /// A blank <c>--limit</c> tag (or one with spaces around it, which no JSONL tag written as a name matches) is refused:
    /// tags are matched exactly, so it is not trimmed either (a silent trim would limit another tag than the one given).
    /// Failed before: both were accepted (Problem was null), the first as a limiter named ' '.
    /// Mutant (reasoned): refusing only an empty-after-trim tag: the padded cases fail, as all four did on the old code.
    /// </summary>
    [Theory]
    [InlineData(" =2", "--limit ' =2': TAG is blank; give a name, like net=2")]
    [InlineData("\t=2", "--limit '\t=2': TAG is blank; give a name, like net=2")]
    [InlineData(" net=2", "--limit ' net=2': TAG ' net' has spaces around it, and tags are matched exactly: write 'net=2'")]
    [InlineData("net =2", "--limit 'net =2': TAG 'net ' has spaces around it, and tags are matched exactly: write 'net=2'")]
    public void A_blank_or_padded_limit_tag_is_refused(string limit, string problem)
    {
        Assert.Equal(problem, Problem("--limit", limit, "echo", ":::", "a"));
        Assert.Null(Problem("--limit", "net=2", "echo", ":::", "a"));
        Assert.Null(Problem("--limit", "n e t=2", "echo", ":::", "a"));
    }

    /// <summary>
    /// A <c>--state</c> FILE whose directory is missing is named as given, with its directory.
    /// Failed before: "cannot use '.../nodir/x.db': Could not find a part of the path '.../nodir/x.db.lock'."
    /// Mutant (reasoned): any message naming the lock file fails the DoesNotContain.
    /// </summary>
    [Fact]
    public void A_state_file_in_a_missing_directory_is_named_as_given()
    {
        var path = Path.Combine(_scratch.Dir, "nodir", "x.db");

        var error = Assert.Throws<RunStateException>(() => RunState.Open(path, create: true).Dispose());

        Assert.Equal($"cannot use '{path}': its directory '{Path.Combine(_scratch.Dir, "nodir")}' does not exist", error.Message);
        Assert.DoesNotContain(".lock", error.Message, StringComparison.Ordinal);
    }

    /// <summary>
    /// One job is one job: the summary and the --state check of an input that got shorter.
    /// Failed before: "actorqueue: 1 jobs in 0.49s (2.0 jobs/s): ..." and "'run.db' records 1 jobs up to job 1, ...".
    /// Mutant (reasoned): "job" whatever the count: the two-job run's "2 jobs in" fails.
    /// </summary>
    [Fact]
    public async Task One_job_is_said_in_the_singular()
    {
        var one = await CliProcess.RunAsync(_scratch.Dir, null, "run", "echo", ":::", "a");
        Assert.Equal(0, one.ExitCode);
        Assert.StartsWith("actorqueue: 1 job in ", one.Errors, StringComparison.Ordinal);

        var two = await CliProcess.RunAsync(_scratch.Dir, null, "run", "echo", ":::", "a", "b");
        Assert.StartsWith("actorqueue: 2 jobs in ", two.Errors, StringComparison.Ordinal);

        var jobs = _scratch.Write("jobs.txt", "echo 1");
        Assert.Equal(0, (await CliProcess.RunAsync(_scratch.Dir, null, "run", jobs, "--state", "run.db")).ExitCode);
        File.WriteAllText(jobs, "");
        var shorter = await CliProcess.RunAsync(_scratch.Dir, null, "run", jobs, "--state", "run.db");
        Assert.Contains("'run.db' records 1 job up to job 1, but the input now ends after job 0", shorter.Errors, StringComparison.Ordinal);
    }

    /// <summary>
    /// <c>ACTORQUEUE_CERT_PASSWORD=''</c> is set, and empty: the file is read without a password (as docs/SECURITY.md
    /// says of an empty variable), and the message says which of the three it was.
    /// Failed before: "(ACTORQUEUE_CERT_PASSWORD is not set)" for the empty variable.
    /// Mutant (reasoned): "is empty" for an unset variable too: the unset case fails (it passed on the old code).
    /// </summary>
    [Theory]
    [InlineData(null, "ACTORQUEUE_CERT_PASSWORD is not set")]
    [InlineData("", "ACTORQUEUE_CERT_PASSWORD is empty, so no password")]
    [InlineData("x", "ACTORQUEUE_CERT_PASSWORD is set")]
    public async Task An_empty_certificate_password_is_said_to_be_empty(string? password, string said)
    {
        Directory.CreateDirectory(_scratch.PathOf("n"));
        File.WriteAllText(_scratch.PathOf(Path.Combine("n", "node.pfx")), "not a pfx");
        var start = CliProcess.StartInfo(_scratch.Dir, "node", "--seed", "127.0.0.1:4000", "--cert-dir", "n");
        start.Environment.Remove("ACTORQUEUE_CERT_PASSWORD");
        if (password is not null)
        {
            start.Environment["ACTORQUEUE_CERT_PASSWORD"] = password;
        }

        var result = await CliProcess.RunAsync(start, null);

        Assert.Equal(255, result.ExitCode);
        Assert.StartsWith($"actorqueue: --cert-dir 'n/node.pfx' is not a PKCS#12 (.pfx) file this password opens ({said}): ", result.Errors, StringComparison.Ordinal);
    }

    /// <summary>The problem <c>actorqueue run ARGS</c> reports while parsing (in-process), or <c>null</c>.</summary>
    private static string? Problem(params string[] args)
    {
        var (options, sources) = InputSources.Split(["run", .. args]);
        var run = new RunSyntax();
        var parse = new RootCommand { run.Command }.Parse(options, new ParserConfiguration { ResponseFileTokenReplacer = null });
        return parse.Errors.Count > 0 ? parse.Errors[0].Message : run.Bind(parse, sources).Problem;
    }
}
