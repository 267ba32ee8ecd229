using System.Collections.Concurrent;
using Serilog.Core;
using Serilog.Events;

namespace ActorQueue.Tests;

/// <summary>A Serilog sink that keeps every event it is given, for tests that assert on what was logged.</summary>
internal sealed class CapturingSink : ILogEventSink
{
    public ConcurrentQueue<LogEvent> Events { get; } = new();

    public void Emit(LogEvent logEvent) => Events.Enqueue(logEvent);
}
