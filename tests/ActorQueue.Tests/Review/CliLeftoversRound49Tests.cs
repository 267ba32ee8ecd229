using ActorQueue.Tests.Cli;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Round 49 leftovers of the CLI's wording: an output path whose directory is missing (or is a file) said as
/// <c>--state</c> says it, and JSONL <c>tags</c> that no <c>--limit</c> can name refused when the line is read.
/// </summary>
public sealed class CliLeftoversRound49Tests : IDisposable
{
    private readonly CliScratch _scratch = new();

    public void Dispose() => _scratch.Dispose();

    /// <summary>
    /// Every output path flag says which directory is missing, or which part is a file, in the path as typed.
    /// Failed before: "actorqueue: --joblog: cannot write 'nowhere/log.tsv': Could not find a part of the path
    /// '/tmp/.../nowhere/log.tsv'; see 'actorqueue --help'" (the same for --log, and --results 'afile/res'), and
    /// "--state: cannot use 'afile/s': its directory 'afile' does not exist" for a directory that exists as a file.
    /// Mutants: Usage.Reason without its DirectoryNotFoundException case (the four --joblog/--log cases fail);
    /// MissingDirectory without its file walk (the 'afile' cases fail). The certificate commands' paths too. Failed
    /// before: "--out 'afile/ca': cannot create the directory (Could not find a part of the path '/tmp/.../afile/ca'.)"
    /// and "--ca 'afile/ca.crt': no such file" / "--cert-dir 'nowhere/node.pfx': no such file" (true, but not which
    /// part is missing). Mutant: CertificateFiles' catches back to .NET's message and "no such file" (those four fail).
    /// </summary>
    [Theory]
    [InlineData("run --joblog nowhere/log.tsv true ::: a", "--joblog: cannot write 'nowhere/log.tsv': its directory 'nowhere' does not exist")]
    [InlineData("run --log nowhere/run.log true ::: a", "--log: cannot write 'nowhere/run.log': its directory 'nowhere' does not exist")]
    [InlineData("run --joblog nowhere/deeper/log.tsv true ::: a", "--joblog: cannot write 'nowhere/deeper/log.tsv': its directory 'nowhere/deeper' does not exist")]
    [InlineData("run --joblog afile/log.tsv true ::: a", "--joblog: cannot write 'afile/log.tsv': 'afile' is a file, not a directory")]
    [InlineData("run --log afile/run.log true ::: a", "--log: cannot write 'afile/run.log': 'afile' is a file, not a directory")]
    [InlineData("run --results afile/res true ::: a", "--results: cannot create 'afile/res': 'afile' is a file, not a directory")]
    [InlineData("run --state afile/s true ::: a", "--state: cannot use 'afile/s': 'afile' is a file, not a directory")]
    [InlineData("cert ca --out afile/ca", "--out 'afile/ca': cannot create the directory: 'afile' is a file, not a directory")]
    [InlineData("cert node --ca afile --name x --out x", "--ca 'afile/ca.crt': 'afile' is a file, not a directory")]
    [InlineData("cert node --ca nowhere --name x --out x", "--ca 'nowhere/ca.crt': its directory 'nowhere' does not exist")]
    [InlineData("node --seed 127.0.0.1:9 --cert-dir nowhere", "--cert-dir 'nowhere/node.pfx': its directory 'nowhere' does not exist")]
    public async Task A_path_whose_directory_is_missing_says_which(string command, string problem)
    {
        await File.WriteAllTextAsync(Path.Combine(_scratch.Dir, "afile"), "");

        var result = await CliProcess.RunAsync(_scratch.Dir, "", command.Split(' '));

        Assert.Equal(255, result.ExitCode);
        Assert.Equal($"actorqueue: {problem}; see 'actorqueue --help'", result.Errors.TrimEnd('\n'));
        Assert.False(Directory.Exists(Path.Combine(_scratch.Dir, "x")));
        Assert.False(Directory.Exists(Path.Combine(_scratch.Dir, "nowhere")));
    }

    /// <summary>
    /// A JSONL tag that is blank or has spaces around it fails its line, as a tag with '=' does: --limit refuses such a
    /// TAG, so no run could give the job a slot. Failed before: the line was read as a job, which failed only when it was
    /// due, as "job 1: unknown tag ' net'; add --limit  net=N" (advice that --limit refuses; "  " likewise), so the
    /// stderr line asserted here was missing. Mutant: the JobReader check back to empty-or-'=' only (the three cases fail).
    /// </summary>
    [Theory]
    [InlineData("\"  \"", "line 1: \"tags\" must be names, got a blank one \"  \" (--limit TAG=N takes no blank TAG); the job is counted as failed")]
    [InlineData("\" net\"", "line 1: \"tags\" are matched exactly and --limit TAG=N takes no spaces around TAG, got \" net\": write \"net\"; the job is counted as failed")]
    [InlineData("\"net\\t\"", "line 1: \"tags\" are matched exactly and --limit TAG=N takes no spaces around TAG, got \"net\\t\": write \"net\"; the job is counted as failed")]
    public async Task A_jsonl_tag_that_no_limit_can_name_fails_its_line(string tag, string problem)
    {
        var jobs = Path.Combine(_scratch.Dir, "jobs.jsonl");
        await File.WriteAllTextAsync(jobs, $"{{\"cmd\":\"echo ran\",\"tags\":[{tag}]}}\n{{\"cmd\":\"echo other\",\"tags\":[\"net\"]}}\n");

        var result = await CliProcess.RunAsync(_scratch.Dir, "", "run", "--jsonl", "jobs.jsonl", "--limit", "net=1");

        Assert.Equal(1, result.ExitCode);
        Assert.Equal("other\n", result.Output);
        Assert.Contains($"actorqueue: {problem}\n", result.Errors, StringComparison.Ordinal);
    }
}
