using System.Globalization;

namespace ActorQueue.Tests.Cli;

/// <summary>One line of a local run's joblog.</summary>
public sealed record JobLogLine(long Seq, double Start, double Runtime, long Received, int Exit, int Signal, string Command);

/// <summary>A CLI test's scratch directory (jobs, joblogs, marker files), deleted with the test, and what the CLI tests read from it.</summary>
public sealed class CliScratch : IDisposable
{
    public const string JobLogHeader = "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand";

    /// <summary>How often the CLI tests look at files and processes while they wait.</summary>
    public static readonly TimeSpan Tick = TimeSpan.FromMilliseconds(20);

    public string Dir { get; } = Directory.CreateTempSubdirectory("actorqueue-cli-").FullName;

    /// <summary>
    /// Kills what a failed test may have left running (any process whose command line names this directory: runners
    /// and their jobs, even orphaned ones), then deletes the directory.
    /// </summary>
    public void Dispose()
    {
        foreach (var pid in ProcessesNaming(Dir))
        {
            try
            {
                using var process = System.Diagnostics.Process.GetProcessById(pid);
                process.Kill(entireProcessTree: true);
            }
            catch (Exception ex) when (ex is ArgumentException or InvalidOperationException or System.ComponentModel.Win32Exception)
            {
                // It ended meanwhile.
            }
        }

        Directory.Delete(Dir, recursive: true);
    }

    private static List<int> ProcessesNaming(string text)
    {
        var found = new List<int>();
        foreach (var entry in Directory.GetDirectories("/proc"))
        {
            if (int.TryParse(Path.GetFileName(entry), CultureInfo.InvariantCulture, out var pid) && pid != Environment.ProcessId)
            {
                try
                {
                    if (File.ReadAllText(Path.Combine(entry, "cmdline")).Contains(text, StringComparison.Ordinal))
                    {
                        found.Add(pid);
                    }
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
                {
                    // Gone, or not ours to read.
                }
            }
        }

        return found;
    }

    public string PathOf(string name) => Path.Combine(Dir, name);

    /// <summary>Makes a FIFO named <paramref name="name"/> in the directory; returns its path.</summary>
    public async Task<string> FifoAsync(string name)
    {
        var fifo = PathOf(name);
        using var mkfifo = System.Diagnostics.Process.Start("mkfifo", [fifo]);
        await mkfifo.WaitForExitAsync();
        Assert.Equal(0, mkfifo.ExitCode);
        return fifo;
    }

    /// <summary>What the directory holds, as sorted relative paths (files and directories, recursively): what a run left behind is the difference.</summary>
    public string[] Entries() =>
        [.. Directory.GetFileSystemEntries(Dir, "*", SearchOption.AllDirectories).Select(e => Path.GetRelativePath(Dir, e)).Order(StringComparer.Ordinal)];

    public string Write(string name, params string[] lines)
    {
        File.WriteAllLines(PathOf(name), lines);
        return PathOf(name);
    }

    /// <summary>Lines in the joblog <paramref name="name"/> so far, header included; 0 before it exists.</summary>
    public int JobLogLineCount(string name = "log.tsv") => File.Exists(PathOf(name)) ? File.ReadAllLines(PathOf(name)).Length : 0;

    /// <summary>The records of a local run's joblog; fails unless the file is a header and whole, well-formed records.</summary>
    public List<JobLogLine> ReadJobLog(string name = "log.tsv")
    {
        var text = File.ReadAllText(PathOf(name));
        Assert.EndsWith("\n", text, StringComparison.Ordinal);
        var lines = text[..^1].Split('\n');
        Assert.Equal(JobLogHeader, lines[0]);
        return lines.Skip(1).Select(line =>
        {
            var f = line.Split('\t', 9);
            Assert.Equal(9, f.Length);
            Assert.Equal(":", f[1]);
            return new JobLogLine(long.Parse(f[0], CultureInfo.InvariantCulture), double.Parse(f[2], CultureInfo.InvariantCulture),
                double.Parse(f[3], CultureInfo.InvariantCulture), long.Parse(f[5], CultureInfo.InvariantCulture),
                int.Parse(f[6], CultureInfo.InvariantCulture), int.Parse(f[7], CultureInfo.InvariantCulture), f[8]);
        }).ToList();
    }

    /// <summary>Whether a process exists and is not a zombie.</summary>
    public static bool IsAlive(int pid)
    {
        var stat = $"/proc/{pid}/stat";
        try
        {
            var text = File.ReadAllText(stat);
            return text[(text.LastIndexOf(')') + 2)] != 'Z';
        }
        catch (IOException)
        {
            return false;
        }
    }

    /// <summary>Kills the process whose pid a job wrote to <paramref name="pidFile"/>, if it is still there (test clean-up).</summary>
    public void KillRecorded(string pidFile)
    {
        if (File.Exists(PathOf(pidFile)) && int.TryParse(File.ReadAllText(PathOf(pidFile)).Trim(), CultureInfo.InvariantCulture, out var pid) && IsAlive(pid))
        {
            try
            {
                System.Diagnostics.Process.GetProcessById(pid).Kill();
            }
            catch (ArgumentException)
            {
                // It ended meanwhile.
            }
        }
    }

    /// <summary>The pid a job wrote to <paramref name="pidFile"/>.</summary>
    public int RecordedPid(string pidFile) => int.Parse(File.ReadAllText(PathOf(pidFile)).Trim(), CultureInfo.InvariantCulture);
}
