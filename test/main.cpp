// The Boost.Test module of the asio_blocking test suite.
#define BOOST_TEST_MODULE asio_blocking
#include <boost/test/unit_test.hpp>
