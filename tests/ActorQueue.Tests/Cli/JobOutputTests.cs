using System.Diagnostics;
using System.Text.Json;

namespace ActorQueue.Tests.Cli;

/// <summary>
/// A job's output reaches stdout byte for byte, and past 64 KiB per stream it waits in a temporary file instead of
/// memory, so a job costs bounded memory whatever it prints.
/// </summary>
public sealed class JobOutputTests : IDisposable
{
    private const int SpoolThreshold = 64 * 1024;

    private readonly CliScratch _scratch = new();

    public void Dispose() => _scratch.Dispose();

    private byte[] WriteRandom(string name, int length)
    {
        var bytes = new byte[length];
        new Random(length).NextBytes(bytes);
        File.WriteAllBytes(_scratch.PathOf(name), bytes);
        return bytes;
    }

    [Fact]
    public async Task Binary_and_non_utf8_output_is_copied_byte_for_byte()
    {
        // NUL, bytes that are not UTF-8, CR LF and no final newline.
        var jobs = _scratch.Write("jobs.txt", @"printf '\377\376\000\001bin\r\n\200'");

        var result = await CliProcess.RunAsync(_scratch.Dir, null, "run", jobs, "-q");

        Assert.Equal(0, result.ExitCode);
        Assert.Equal([0xFF, 0xFE, 0x00, 0x01, (byte)'b', (byte)'i', (byte)'n', 0x0D, 0x0A, 0x80], result.OutputBytes);
    }

    [Fact]
    public async Task Tagged_output_prefixes_every_line_and_keeps_its_bytes()
    {
        var jobs = _scratch.Write("jobs.jsonl", """{"id": "j", "cmd": "printf 'caf\\351\\n\\n\\nend'"}""");

        var result = await CliProcess.RunAsync(_scratch.Dir, null, "run", jobs, "--jsonl", "--tag", "-q");

        Assert.Equal(0, result.ExitCode);
        Assert.Equal([.. "j\tcaf"u8, 0xE9, .. "\nj\t\nj\t\nj\tend\n"u8], result.OutputBytes);
    }

    [Fact]
    public async Task Large_outputs_of_parallel_jobs_arrive_whole_and_exact()
    {
        var first = WriteRandom("first.bin", 3_000_000);
        var second = WriteRandom("second.bin", 2_000_001);
        var jobs = _scratch.Write("jobs.txt", "cat first.bin", "cat second.bin");

        var result = await CliProcess.RunAsync(_scratch.Dir, null, "run", jobs, "-j", "2", "-q", "--joblog", "log.tsv");

        Assert.Equal(0, result.ExitCode);
        Assert.True(result.OutputBytes.SequenceEqual([.. first, .. second]) || result.OutputBytes.SequenceEqual([.. second, .. first]),
            "each job's output whole and byte-exact");
        Assert.Equal([3_000_000L, 2_000_001L], _scratch.ReadJobLog().OrderBy(l => l.Seq).Select(l => l.Received));
    }

    [Fact]
    public async Task Output_past_the_threshold_is_spooled_to_an_unlinked_temporary_file_while_the_job_runs()
    {
        var data = WriteRandom("data.bin", 1_000_000);
        var spool = Directory.CreateDirectory(_scratch.PathOf("tmp")).FullName;
        var jobs = _scratch.Write("jobs.txt", $"cat data.bin; until [ -e {_scratch.PathOf("release")} ]; do sleep 0.02; done");
        var start = CliProcess.StartInfo(_scratch.Dir, "run", jobs, "-q");
        start.Environment["TMPDIR"] = spool;
        using var run = Process.Start(start)!;
        run.StandardInput.Close();
        var output = new MemoryStream();
        var copying = run.StandardOutput.BaseStream.CopyToAsync(output);
        var errors = run.StandardError.ReadToEndAsync();

        // The runner holds the job's stdout in a file under TMPDIR that it has already unlinked (so no crash leaves it).
        await Poll.UntilAsync(() => OpenFiles(run.Id).Any(target => target.StartsWith(spool + "/actorqueue-", StringComparison.Ordinal) && target.EndsWith(" (deleted)", StringComparison.Ordinal)),
            TimeSpan.FromSeconds(30), "the runner spooled the job's output", CliScratch.Tick);
        Assert.Empty(Directory.GetFiles(spool, "actorqueue-*")); // (the .NET runtime keeps its diagnostics socket there too)
        File.WriteAllText(_scratch.PathOf("release"), "");
        await run.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
        await copying;

        Assert.True(run.ExitCode == 0, await errors);
        Assert.Equal(data, output.ToArray());
    }

    [Fact]
    public async Task Only_output_past_64_KiB_is_spooled()
    {
        var jobs = _scratch.Write("jobs.jsonl",
            $$"""{"id": "at", "cmd": "head -c {{SpoolThreshold}} /dev/zero"}""",
            $$"""{"id": "past", "cmd": "head -c {{SpoolThreshold + 1}} /dev/zero"}""",
            $$"""{"id": "errors", "cmd": "head -c {{SpoolThreshold + 1}} /dev/zero >&2"}""");

        var result = await CliProcess.RunAsync(_scratch.Dir, null, "run", jobs, "--jsonl", "-q", "--log", "run.clef");

        Assert.Equal(0, result.ExitCode);
        Assert.Equal(2 * SpoolThreshold + 1, result.OutputBytes.Length);
        var events = File.ReadAllLines(_scratch.PathOf("run.clef")).Select(l => JsonDocument.Parse(l).RootElement)
            .Where(e => e.TryGetProperty("JobId", out _))
            .ToDictionary(e => e.GetProperty("JobId").GetString()!, e => (e.GetProperty("OutputBytes").GetInt64(), e.GetProperty("Spooled").GetBoolean()));
        Assert.Equal((SpoolThreshold, false), events["at"]);
        Assert.Equal((SpoolThreshold + 1, true), events["past"]);
        Assert.Equal((SpoolThreshold + 1, true), events["errors"]);
    }

    [Fact]
    public async Task A_temporary_directory_that_cannot_be_written_is_a_usage_error_before_any_job_starts()
    {
        var jobs = _scratch.Write("jobs.txt", $"touch {_scratch.PathOf("started")}");
        var start = CliProcess.StartInfo(_scratch.Dir, "run", jobs);
        start.Environment["TMPDIR"] = _scratch.PathOf("missing");

        var result = await CliProcess.RunAsync(start, null);

        Assert.Equal(255, result.ExitCode);
        Assert.Contains($"actorqueue: cannot keep job output past 64 KiB in TMPDIR '{_scratch.PathOf("missing")}/'", result.Errors);
        Assert.False(File.Exists(_scratch.PathOf("started")));
    }

    [Fact]
    public async Task Output_that_cannot_be_spooled_fails_the_job_and_kills_it_instead_of_leaving_it_blocked_on_a_full_pipe()
    {
        // The job waits until its temporary directory is gone, then prints 1 MB: past the 64 KiB pipe buffer, a job
        // whose output nobody reads any more would block for ever.
        var spool = Directory.CreateDirectory(_scratch.PathOf("tmp")).FullName;
        var jobs = _scratch.Write("jobs.txt", $"touch {_scratch.PathOf("started")}; while [ -d {spool} ]; do sleep 0.02; done; head -c 1000000 /dev/zero; echo printed > {_scratch.PathOf("printed")}",
                                  "echo second");
        var start = CliProcess.StartInfo(_scratch.Dir, "run", jobs, "-j", "1", "--joblog", "log.tsv");
        start.Environment["TMPDIR"] = spool;
        var run = CliProcess.RunAsync(start, null);
        await Poll.UntilAsync(() => File.Exists(_scratch.PathOf("started")), TimeSpan.FromSeconds(30), "the job started", CliScratch.Tick);

        Directory.Delete(spool, recursive: true);
        var result = await run;

        Assert.Equal(1, result.ExitCode);
        Assert.Contains("actorqueue: job 1 failed: its output could not be kept (", result.Errors);
        Assert.False(File.Exists(_scratch.PathOf("printed")), "the job was killed, not left to finish unread");
        Assert.EndsWith("second\n", result.Output, StringComparison.Ordinal);
        Assert.Equal([(1L, -1), (2L, 0)], _scratch.ReadJobLog().OrderBy(l => l.Seq).Select(l => (l.Seq, l.Exit)));
    }

    /// <summary>Where a process's open file descriptors point (<c>/proc/PID/fd</c>).</summary>
    private static List<string> OpenFiles(int pid)
    {
        var targets = new List<string>();
        try
        {
            foreach (var fd in Directory.GetFiles($"/proc/{pid}/fd"))
            {
                if (new FileInfo(fd).LinkTarget is { } target)
                {
                    targets.Add(target);
                }
            }
        }
        catch (IOException)
        {
            // The process or one descriptor went away while we looked.
        }

        return targets;
    }
}
