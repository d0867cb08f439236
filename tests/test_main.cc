// The one translation unit per test executable that defines the module.
#define BOOST_TEST_MODULE giftcard
#include <boost/test/unit_test.hpp>
