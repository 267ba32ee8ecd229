using System.Diagnostics;
using System.Text;

namespace ActorQueue.Tests.Hosting;

/// <summary>The README's Generic Host example run as a real process and stopped the way a service manager stops it.</summary>
public class HostedExampleProcessTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task The_hosted_example_does_its_work_and_exits_cleanly_on_SIGTERM()
    {
        var dll = Path.Combine(RepositoryFiles.Root, "examples", "ActorQueue.Examples", "bin", RepositoryFiles.Configuration, "net10.0",
            "ActorQueue.Examples.dll");
        Assert.True(File.Exists(dll), $"build the examples first: {dll}");
        var start = new ProcessStartInfo("dotnet")
        {
            ArgumentList = { dll, "--ActorQueue:Limiters:llm:MaxRunning=2", "--ActorQueue:Queues:fetch:Limiter=llm", "--Logging:Console:FormatterName=simple" },
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.Environment["DOTNET_ENVIRONMENT"] = "Production";
        using var process = Process.Start(start)!;
        var output = new StringBuilder();
        var fetchedAll = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        process.OutputDataReceived += (_, line) =>
        {
            lock (output)
            {
                output.AppendLine(line.Data);
                if (line.Data?.Contains("fetched https://example.org/3", StringComparison.Ordinal) == true)
                {
                    fetchedAll.TrySetResult();
                }
            }
        };
        process.ErrorDataReceived += (_, line) =>
        {
            lock (output)
            {
                output.AppendLine(line.Data);
            }
        };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            await fetchedAll.Task.WaitAsync(Bound);

            using (var kill = Process.Start("kill", ["-TERM", process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
            {
                await kill.WaitForExitAsync();
            }

            await process.WaitForExitAsync().WaitAsync(Bound);
        }
        catch (TimeoutException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException("the example did not finish; its output:\n" + output);
        }

        var log = output.ToString();
        Assert.True(process.ExitCode == 0, $"exit code {process.ExitCode}; output:\n{log}");
        Assert.Contains("Application is shutting down", log, StringComparison.Ordinal);
        Assert.Contains("Queue fetch stopped with 0 items still queued", log, StringComparison.Ordinal);
    }
}
