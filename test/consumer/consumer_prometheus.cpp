// A program built against the installed package's optional Prometheus component.
#include <asio_blocking.hpp>
#include <asio_blocking/prometheus.hpp>

#include <prometheus/text_serializer.h>

#include <iostream>

int main()
{
    asio_blocking::blocking_pool pool({.max_threads = 2});
    asio_blocking::prometheus_collector collector(pool, {{"pool", "consumer"}});
    const std::string text = prometheus::TextSerializer().Serialize(collector.Collect());
    std::cout << (text.find("asio_blocking_threads{pool=\"consumer\"}") != std::string::npos ? "prometheus: ok\n"
                                                                                             : "prometheus: missing\n");
}
