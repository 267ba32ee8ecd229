using ActorQueue.Actors;

namespace ActorQueue.Tests.Limiting.Rates;

/// <summary>The count the model-API adapter keeps its granted leases in: racing adders on every processor, one exact sum.</summary>
public sealed class StripedCountTests
{
    [Fact]
    public async Task Racing_adders_on_every_processor_sum_to_every_add()
    {
        const int adders = 8, each = 250_000;
        var count = new StripedCount();
        using var start = new Barrier(adders);

        var racers = Enumerable.Range(0, adders).Select(_ => Task.Factory.StartNew(() =>
        {
            start.SignalAndWait();
            for (var i = 0; i < each; i++)
            {
                count.Increment();
            }
        }, TaskCreationOptions.LongRunning)).ToArray();
        await Task.WhenAll(racers).WaitAsync(TimeSpan.FromSeconds(60));

        Assert.Equal((long)adders * each, count.Read());
    }

    [Fact]
    public void A_fresh_count_is_zero_and_counts_each_add()
    {
        var count = new StripedCount();
        Assert.Equal(0, count.Read());

        count.Increment();
        count.Increment();

        Assert.Equal(2, count.Read());
    }
}
