using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace ActorQueue.Tests.Hosting;

/// <summary>A Microsoft.Extensions.Logging provider that keeps every event, for tests that read what was logged where.</summary>
internal sealed class CapturingLoggerProvider : ILoggerProvider, ILoggerFactory
{
    public ConcurrentQueue<(string Category, LogLevel Level, string Message, Exception? Exception)> Events { get; } = new();

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public void AddProvider(ILoggerProvider provider) => throw new NotSupportedException();

    public bool Logged(string categoryPrefix, string fragment) =>
        Events.Any(e => e.Category.StartsWith(categoryPrefix, StringComparison.Ordinal) && e.Message.Contains(fragment, StringComparison.Ordinal));

    public void Dispose()
    {
    }

    private sealed class Logger(CapturingLoggerProvider owner, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            owner.Events.Enqueue((category, logLevel, formatter(state, exception), exception));
    }
}
