print("securerouter")
