print('up')
